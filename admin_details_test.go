package mcpgate_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// detailsBearer is the static credential of connector "plain": a secret
// that no answer may hold.
const detailsBearer = "details-bearer-canary"

// TestAdminConnectorDetails: GET /mcpgate/connectors/{id} on a real Caddy
// adds the details to the listed view: a static connector's last use, by
// anyone or by ?user=; an OAuth connector's server (not discovered yet,
// then discovered), its static client with its secret only as stored,
// the redirect URI, scopes and connection; a per-user connector's
// connection by ?user=, the zero one for a user who never connected; an
// unknown id is 404. No answer holds the client secret, a token or the
// static credential. A refresh token revoked at the provider shows as
// reauth_required with its reason, here and on GET /connectors; and a
// last use outlives a reload, flushed to the store.
func TestAdminConnectorDetails(t *testing.T) {
	s := startOAuthStack(t)
	plain := testupstream.StartT(t, testupstream.Options{Name: "plain", BearerToken: detailsBearer})
	clientID, clientSecret := registerByHand(t, s.teamAS, site+"/connect/callback")
	config := strings.Replace(s.config, "\t\tgrant {\n", "\t\tconnector plain {\n\t\t\turl "+plain.URL+"\n\t\t\tauth bearer "+detailsBearer+"\n\t\t}\n\t\tgrant {\n", 1)
	config = strings.Replace(config, "connectors notes team\n", "connectors notes team plain\n", 1)
	config = strings.Replace(config, "\t\t\t\tconsent shared\n", "\t\t\t\tconsent shared\n\t\t\t\tclient_id "+clientID+"\n\t\t\t\tclient_secret "+clientSecret+"\n", 1)
	s.tester.InitServer(config, "caddyfile")
	secrets := []string{clientSecret, detailsBearer}

	// A static connector: its last use, by anyone or by one user.
	if d := details(t, "plain", secrets); d["last_used"] != nil || d["oauth"] != nil {
		t.Fatalf("plain, never used: %v", d)
	}
	before := time.Now().Add(-time.Second)
	mustWork(t, echo(t, "alice", "plain"), "alice's call of plain")
	used := lastUsed(t, details(t, "plain", secrets), before)
	if d := details(t, "plain?user=alice", secrets); d["last_used"] != used.Format(time.RFC3339Nano) || d["user"] != "alice" {
		t.Errorf("plain's last use by alice: %v, want %v", d, used)
	}
	if d := details(t, "plain?user=bob", secrets); d["last_used"] != nil {
		t.Errorf("plain's last use by bob, who never used it: %v", d["last_used"])
	}

	// A shared connector with a static client, before its consent: the
	// server is not discovered for the details.
	o := oauthOf(t, details(t, "team", secrets))
	client := o["client"].(map[string]any)
	if o["server"].(map[string]any)["source"] != "not discovered yet" || client["kind"] != "static" || client["client_id"] != clientID ||
		client["secret_stored"] != true || o["redirect_uri"] != site+"/connect/callback" || o["recorded"] != nil {
		t.Fatalf("team before consent: %v", o)
	}
	consent(t, "alice", "team")
	mustWork(t, echo(t, "bob", "team"), "bob's call of team")
	token := lastBearer(t, s.team)
	secrets = append(secrets, token)
	v := mustAdmin(t, 200, "GET", "/mcpgate/connectors/team", "")
	noSecrets(t, v, secrets)
	o = oauthOf(t, v["details"].(map[string]any))
	server, recorded := o["server"].(map[string]any), o["recorded"].(map[string]any)
	if server["source"] != "discovered" || server["issuer"] != s.teamAS.Issuer || recorded["issuer"] != s.teamAS.Issuer ||
		!strings.HasPrefix(recorded["token_endpoint"].(string), s.teamAS.Issuer) || o["refresh_token_stored"] != true ||
		o["scopes"] == nil || o["created"] == nil || o["updated"] == nil {
		t.Errorf("team after consent: %v", o)
	}
	if state(v) != "active" || state(o) != "active" || v["details"].(map[string]any)["last_used"] == nil {
		t.Errorf("team's connection and last use: %v", v)
	}

	// A per-user connector: ?user= picks whose connection.
	consent(t, "alice", "notes")
	v = mustAdmin(t, 200, "GET", "/mcpgate/connectors/notes?user=alice", "")
	noSecrets(t, v, secrets)
	if o := oauthOf(t, v["details"].(map[string]any)); state(v) != "active" || state(o) != "active" || o["client"].(map[string]any)["kind"] != "dcr" {
		t.Errorf("notes as alice's: %v", v)
	}
	v = mustAdmin(t, 200, "GET", "/mcpgate/connectors/notes?user=carol", "")
	if o := oauthOf(t, v["details"].(map[string]any)); v["connection"] == nil || state(v) != nil || state(o) != nil || o["recorded"] != nil {
		t.Errorf("notes as carol's, who never connected: %v", v)
	}
	if v := mustAdmin(t, 200, "GET", "/mcpgate/connectors/notes", ""); v["connection"] != nil {
		t.Errorf("notes without a user shows a connection: %v", v)
	}
	if status, out := admin(t, "GET", "/mcpgate/connectors/nope", ""); status != 404 || !strings.Contains(out["error"].(string), `no connector "nope"`) {
		t.Errorf("an unknown id: %d %v", status, out)
	}

	// The provider revokes the grant (RFC 7009, by its own client): the
	// upstream refuses the token, the refresh is refused, and the user
	// is told why and what to do.
	revokeAt(t, s.teamAS, clientID, clientSecret, token)
	res := echo(t, "bob", "team")
	if !res.IsError {
		t.Fatal("a call on a revoked grant worked")
	}
	reason := "the provider refused the refresh token (invalid_grant): it was revoked there, or it expired; reconnect"
	// The agent is told why too, not only that consent is needed.
	if text, _ := res.Content[0].(mcp.TextContent); !strings.Contains(text.Text, "Connector team is shared: "+reason) {
		t.Errorf("the call's error does not say why the connection stopped: %v", res.Content)
	}
	if st := statusOf(t, "alice", "team"); st["state"] != "reauth_required" || !strings.HasPrefix(st["disconnect_reason"].(string), reason) {
		t.Errorf("GET /connectors shows team as %v", st)
	}
	if v := mustAdmin(t, 200, "GET", "/mcpgate/connectors/team", ""); state(v) != "reauth_required" ||
		!strings.HasPrefix(v["connection"].(map[string]any)["reason"].(string), reason) {
		t.Errorf("the details show team as %v", v["connection"])
	}

	// A reload: the new generation knows the last use from the store,
	// where the old one flushed it when it stopped.
	s.tester.InitServer(strings.Replace(config, "mcpgate {\n", "mcpgate {\n\t\tlist_cache_ttl 1m\n", 1), "caddyfile")
	if got := lastUsed(t, details(t, "plain?user=alice", secrets), before); !got.Equal(used) {
		t.Errorf("after a reload, plain's last use is %v, want %v", got, used)
	}
}

// details returns the details of GET /mcpgate/connectors/<path>, and
// checks that the answer holds none of secrets.
func details(t *testing.T, path string, secrets []string) map[string]any {
	t.Helper()
	v := mustAdmin(t, 200, "GET", "/mcpgate/connectors/"+path, "")
	noSecrets(t, v, secrets)
	d, ok := v["details"].(map[string]any)
	if !ok {
		t.Fatalf("GET %s has no details: %v", path, v)
	}
	return d
}

// noSecrets fails if the answer v holds any of secrets.
func noSecrets(t *testing.T, v map[string]any, secrets []string) {
	t.Helper()
	body := mustJSON(t, v)
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Fatalf("an admin answer holds a secret: %s", body)
		}
	}
}

// oauthOf returns the OAuth part of details.
func oauthOf(t *testing.T, d map[string]any) map[string]any {
	t.Helper()
	o, ok := d["oauth"].(map[string]any)
	if !ok {
		t.Fatalf("no OAuth details: %v", d)
	}
	return o
}

// state is the connection state in v, or nil.
func state(v map[string]any) any {
	conn, _ := v["connection"].(map[string]any)
	return conn["state"]
}

// lastUsed returns the last use that details d give, which must lie
// between after and now.
func lastUsed(t *testing.T, d map[string]any, after time.Time) time.Time {
	t.Helper()
	s, _ := d["last_used"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || at.Before(after) || at.After(time.Now()) {
		t.Fatalf("last_used %q is not a time between %v and now: %v", s, after, err)
	}
	return at
}

// lastBearer returns the bearer token of the last request up received.
func lastBearer(t *testing.T, up *testupstream.Server) string {
	t.Helper()
	reqs := up.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if token, ok := strings.CutPrefix(reqs[i].Header.Get("Authorization"), "Bearer "); ok {
			return token
		}
	}
	t.Fatal("the upstream got no bearer token")
	return ""
}

// revokeAt revokes token at as (RFC 7009) as the client it was issued
// to; oidc-provider then revokes the whole grant, refresh tokens too.
func revokeAt(t *testing.T, as *testas.AS, clientID, clientSecret, token string) {
	t.Helper()
	resp, err := http.Get(as.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil || meta.RevocationEndpoint == "" {
		t.Fatalf("the authorization server's metadata: %v %+v", err, meta)
	}
	req, _ := http.NewRequest(http.MethodPost, meta.RevocationEndpoint,
		strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoking at the provider: %d", resp.StatusCode)
	}
}
