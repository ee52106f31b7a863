package mcpgate_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestPresetClientTakenByRuntimeConnector shows a config preset's OAuth
// client at work end to end: the operator registered a client with the
// upstream's authorization server by hand and put it in a preset; an admin
// adds a runtime connector at the preset's URL without a client of its
// own, and its consent runs as the preset's client, with its secret at the
// token endpoint, with no dynamic registration.
func TestPresetClientTakenByRuntimeConnector(t *testing.T) {
	s := startOAuthStack(t)
	extra := testupstream.StartT(t, testupstream.Options{Name: "extra"})
	extraAS := testas.Start(t, testas.Options{Resource: extra.URL, Accounts: []string{"alice", "bob"}})
	extra.SetGuard(extraAS.Protect)
	clientID, clientSecret := registerByHand(t, extraAS, site+"/connect/callback")

	config := strings.Replace(s.config, "connectors notes team\n", "connectors notes team my-extra\n", 1)
	config = strings.Replace(config, "mcpgate {\n", `mcpgate {
		preset extra {
			url `+extra.URL+`
			client_id `+clientID+`
			client_secret `+clientSecret+`
			title "Extra"
		}
`, 1)
	s.tester.InitServer(config, "caddyfile")

	added := mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"my-extra","url":"`+extra.URL+`",
		"auth":{"type":"oauth","oauth":{"consent":"shared","insecure_loopback":true}}}`)
	if added["preset"] != "extra" || added["title"] != "Extra" {
		t.Fatalf("the connector did not take the preset: %v", added)
	}
	if strings.Contains(mustJSON(t, added), clientSecret) {
		t.Fatal("the admin API answered with the preset's client secret")
	}
	authURL, _ := added["auth_url"].(string)
	u, err := url.Parse(authURL)
	if err != nil || !strings.HasPrefix(authURL, extraAS.Issuer) || u.Query().Get("client_id") != clientID {
		t.Fatalf("the consent does not run as the preset's client %s: %q", clientID, authURL)
	}
	callback := testas.Authorize(t, authURL, "alice", site+"/connect/callback?")
	if resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "alice", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	// The one registration is the operator's: the token endpoint took the
	// preset's secret, or it would have refused the code.
	if st := stats(t, extraAS); st.Registrations != 1 || st.TokenRequests["authorization_code"] != 1 || st.TokenErrors["authorization_code"] != 0 {
		t.Fatalf("the authorization server saw %+v", st)
	}
	mustWork(t, echo(t, "bob", "my-extra"), "the preset's client's shared token")
}

// registerByHand registers a confidential client at as by RFC 7591, as an
// operator would before putting it in a preset, and returns its id and
// secret.
func registerByHand(t *testing.T, as *testas.AS, redirectURI string) (string, string) {
	t.Helper()
	resp, err := http.Get(as.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil || meta.RegistrationEndpoint == "" {
		t.Fatalf("the authorization server's metadata: %v %+v", err, meta)
	}
	body, _ := json.Marshal(map[string]any{
		"redirect_uris": []string{redirectURI}, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "token_endpoint_auth_method": "client_secret_basic",
	})
	resp, err = http.Post(meta.RegistrationEndpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var client struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&client); err != nil || resp.StatusCode != http.StatusCreated || client.ClientSecret == "" {
		t.Fatalf("registering a client by hand: %d %v %+v", resp.StatusCode, err, client)
	}
	return client.ClientID, client.ClientSecret
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
