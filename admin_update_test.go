package mcpgate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// callEcho calls <connector>_echo as user through /mcp, and returns the
// text of the answer: the tool's, or the gateway's error.
func callEcho(t testing.TB, user, connector string) string {
	t.Helper()
	c := agenttest.Dial(t, site+"/mcp", map[string]string{"Authorization": basic(user)})
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: connector + "_echo", Arguments: map[string]any{"message": "hi " + user},
	}})
	if err != nil {
		return err.Error()
	}
	if len(res.Content) > 0 {
		if tc, ok := res.Content[0].(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// consentShared runs the admin's shared consent to a runtime connector
// whose answer carried authURL, as alice.
func consentShared(t testing.TB, authURL string) {
	t.Helper()
	callback := testas.Authorize(t, authURL, "alice", site+"/connect/callback?")
	if resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "alice", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
}

// adminChanges returns the details of the admin changes the audit log
// recorded for connector, newest first.
func adminChanges(t testing.TB, connector string) []string {
	t.Helper()
	var out []string
	for _, e := range mustAdmin(t, 200, "GET", "/mcpgate/audit?kind=admin_change&connector="+connector, "")["events"].([]any) {
		out = append(out, e.(map[string]any)["detail"].(string))
	}
	return out
}

// TestAdminUpdate changes connectors through PATCH /mcpgate/connectors/{id}
// on a real Caddy, against real authorization servers: a new title keeps
// the tokens (a call works with no new consent); disabling takes a
// connector's tools out of every list and refuses its calls and API
// requests without asking its upstream, and enabling needs no consent; a
// disabled connector is neither connected nor reconnected, and a consent
// started before it was disabled completes nothing; a config connector
// can be switched but not changed; a new URL, or an issuer the grants did
// not come from, revokes the tokens at the provider once the change is in
// force, and says so in the answer and the audit log.
func TestAdminUpdate(t *testing.T) {
	s := startOAuthStack(t)
	extra := testupstream.StartT(t, testupstream.Options{Name: "extra"})
	extraAS := testas.Start(t, testas.Options{Resource: extra.URL, Accounts: []string{"alice", "bob"}})
	extra.SetGuard(extraAS.Protect)
	moved := testupstream.StartT(t, testupstream.Options{Name: "moved"})
	movedAS := testas.Start(t, testas.Options{Resource: moved.URL, Accounts: []string{"alice", "bob"}})
	moved.SetGuard(movedAS.Protect)
	var apiCalls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { apiCalls.Add(1) }))
	t.Cleanup(api.Close)

	// A config title for team, and grants of the runtime connectors.
	config := strings.Replace(s.config, "connectors notes team\n", "connectors notes team extra billing hooked\n", 1)
	config = strings.Replace(config, "connector team {\n", "connector team {\n\t\t\ttitle \"Team space\"\n", 1)
	s.tester.InitServer(config, "caddyfile")
	added := mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"extra","url":"`+extra.URL+`",
		"auth":{"type":"oauth","oauth":{"registration":"dcr","consent":"shared","insecure_loopback":true}}}`)
	consentShared(t, added["auth_url"].(string))
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"billing","api":"`+api.URL+`","auth":{"type":"bearer","token":"api-token"}}`)
	if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
		t.Fatalf("extra before the updates: %q", got)
	}
	if c := mustAdmin(t, 200, "GET", "/mcpgate/connectors/team", ""); c["title"] != "Team space" {
		t.Errorf("the config title of team: %v", c)
	}
	if st := statusOf(t, "alice", "team"); st["title"] != "Team space" {
		t.Errorf("GET /connectors shows team as %v", st)
	}

	t.Run("a title keeps the tokens", func(t *testing.T) {
		before := stats(t, extraAS)
		out := mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"title":"Extra tools","description":"Echo and friends"}`)
		if out["title"] != "Extra tools" || len(out["revoked"].([]any)) != 0 || !strings.HasPrefix(out["tokens"].(string), "kept") {
			t.Fatalf("PATCH title = %v", out)
		}
		if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
			t.Fatalf("extra after a new title: %q", got)
		}
		if after := stats(t, extraAS); after.Authorizations != before.Authorizations || after.Revocations != before.Revocations {
			t.Errorf("a new title made the provider see %+v, before %+v", after, before)
		}
		if st := statusOf(t, "alice", "extra"); st["title"] != "Extra tools" || st["description"] != "Echo and friends" {
			t.Errorf("GET /connectors shows extra as %v", st)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		before, seen := stats(t, extraAS), len(extra.Requests())
		out := mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"enabled":false}`)
		if out["status"] != "disabled" || !strings.HasPrefix(out["tokens"].(string), "kept") {
			t.Fatalf("PATCH enabled false = %v", out)
		}
		mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/billing", `{"enabled":false}`)
		if got := callEcho(t, "alice", "extra"); got != "connector extra is disabled by an admin" {
			t.Errorf("a call to the disabled extra: %q", got)
		}
		if names := toolNames(t, site, "alice"); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "extra_") }) {
			t.Errorf("the disabled extra's tools are listed: %v", names)
		}
		if resp, body := do(t, http.MethodGet, "/connectors/billing/api/invoices", "alice", nil, nil); resp.StatusCode != 403 ||
			!strings.Contains(string(body), "connector billing is disabled by an admin") || apiCalls.Load() != 0 {
			t.Errorf("the disabled billing API: %d %s, %d calls reached it", resp.StatusCode, body, apiCalls.Load())
		}
		if resp, body := do(t, http.MethodPost, "/connectors/extra/mcp", "alice", []byte(`{}`), nil); resp.StatusCode != 403 {
			t.Errorf("the disabled extra's own endpoint: %d %s", resp.StatusCode, body)
		}
		if st := statusOf(t, "alice", "extra"); st["status"] != "disabled" {
			t.Errorf("GET /connectors shows the disabled extra as %v", st)
		}
		if c := mustAdmin(t, 200, "GET", "/mcpgate/connectors/extra", ""); c["status"] != "disabled" {
			t.Errorf("the admin API shows the disabled extra as %v", c)
		}
		if n := len(extra.Requests()); n != seen {
			t.Errorf("the disabled extra's upstream got %d requests", n-seen)
		}
		mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"enabled":true}`)
		if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
			t.Fatalf("extra enabled again: %q", got)
		}
		if after := stats(t, extraAS); after.Authorizations != before.Authorizations || after.Revocations != before.Revocations {
			t.Errorf("disable and enable made the provider see %+v, before %+v", after, before)
		}
		if changes := adminChanges(t, "extra"); len(changes) < 2 || !strings.HasPrefix(changes[0], "enabled the connector") || !strings.HasPrefix(changes[1], "disabled the connector") {
			t.Errorf("the audit log of extra: %q", changes)
		}
	})

	t.Run("a config connector", func(t *testing.T) {
		mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/team", `{"enabled":false}`)
		if st := statusOf(t, "alice", "team"); st["status"] != "disabled" {
			t.Errorf("the disabled team: %v", st)
		}
		mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/team", `{"enabled":true}`)
		if st := statusOf(t, "alice", "team"); st["status"] == "disabled" {
			t.Errorf("team enabled again: %v", st)
		}
	})

	t.Run("a disabled connector is not connected", func(t *testing.T) {
		started := mustAdmin(t, 200, "POST", "/mcpgate/connectors/extra/connect", "")
		before := stats(t, extraAS)
		mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"enabled":false}`)
		for _, route := range []string{"connect", "reconnect"} {
			status, out := admin(t, "POST", "/mcpgate/connectors/extra/"+route, "")
			if msg, _ := out["error"].(string); status != 409 || !strings.Contains(msg, "connector extra is disabled: enable it first") {
				t.Errorf("%s of the disabled extra: %d %v", route, status, out)
			}
		}
		// The consent started before the disable: its code is never
		// redeemed, so no token is issued for the disabled connector.
		callback := testas.Authorize(t, started["auth_url"].(string), "alice", site+"/connect/callback?")
		resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "alice", nil, nil)
		if resp.StatusCode != 403 || !strings.Contains(string(body), "connector extra is disabled by an admin") {
			t.Errorf("the callback of a consent started before the disable: %d %s", resp.StatusCode, body)
		}
		if after := stats(t, extraAS); after.TokenRequests["authorization_code"] != before.TokenRequests["authorization_code"] || after.Revocations != before.Revocations {
			t.Errorf("the disabled extra's provider saw %+v, before %+v", after, before)
		}
		mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"enabled":true}`)
		if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
			t.Fatalf("extra enabled again, its tokens kept through the refusals: %q", got)
		}
		// Added disabled, a shared connector starts no consent either.
		paused := mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"paused","url":"`+extra.URL+`","disabled":true,
			"auth":{"type":"oauth","oauth":{"registration":"dcr","consent":"shared","insecure_loopback":true}}}`)
		if paused["status"] != "disabled" || paused["auth_url"] != nil || paused["consent_error"] != nil {
			t.Errorf("a shared connector added disabled: %v, want no consent started", paused)
		}
		mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/paused", "")
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			id, body string
			status   int
			says     string
		}{
			{"nope", `{"title":"x"}`, 404, `no connector "nope"`},
			{"team", `{"title":"x"}`, 409, `connector "team" is defined in the config, which the admin API cannot change but for enabled`},
			{"extra", `{"colour":"red"}`, 400, "colour"},
			{"extra", `{"url":"ftp://example.com/mcp"}`, 400, "scheme must be http or https"},
			{"extra", `{"title":`, 400, "not valid JSON"},
			{"extra", `{"enabled":"no"}`, 400, "enabled must be true or false"},
			{"extra", `{"auth":{"oauth":{"scopes":"a\\b"}}}`, 400, "not a valid scope"},
		} {
			status, out := admin(t, "PATCH", "/mcpgate/connectors/"+tc.id, tc.body)
			if msg, _ := out["error"].(string); status != tc.status || !strings.Contains(msg, tc.says) {
				t.Errorf("PATCH %s %s: %d %q, want %d saying %q", tc.id, tc.body, status, msg, tc.status, tc.says)
			}
		}
		if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
			t.Errorf("extra after refused patches: %q", got)
		}
	})

	t.Run("a new URL revokes", func(t *testing.T) {
		before := stats(t, extraAS)
		out := mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"url":"`+moved.URL+`"}`)
		revoked, _ := out["revoked"].([]any)
		if len(revoked) != 1 || revoked[0].(map[string]any)["revoked"] != true || !strings.HasPrefix(out["tokens"].(string), "revoked: the resource changed") {
			t.Fatalf("PATCH url = %v", out)
		}
		if after := stats(t, extraAS); after.Revocations <= before.Revocations {
			t.Errorf("the provider saw no revocation: %+v, before %+v", after, before)
		}
		if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "an admin changed the connector: the resource changed; connect again") {
			t.Errorf("extra after its URL changed: %q, want a consent needed, saying why", got)
		}
		if changes := adminChanges(t, "extra"); len(changes) == 0 || !strings.Contains(changes[0], "revoked: the resource changed") {
			t.Errorf("the audit log of extra: %q", changes)
		}
	})

	t.Run("an issuer revokes unless the grants came from it", func(t *testing.T) {
		added := mustAdmin(t, 200, "POST", "/mcpgate/connectors/extra/connect", "")
		consentShared(t, added["auth_url"].(string))
		out := mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"auth":{"oauth":{"issuer":"`+movedAS.Issuer+`"}}}`)
		if len(out["revoked"].([]any)) != 0 {
			t.Fatalf("PATCH to the grants' own issuer = %v", out)
		}
		if got := callEcho(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
			t.Fatalf("extra with its issuer configured: %q", got)
		}
		before := stats(t, movedAS)
		out = mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/extra", `{"auth":{"oauth":{"issuer":"`+extraAS.Issuer+`"}}}`)
		if len(out["revoked"].([]any)) != 1 || !strings.HasPrefix(out["tokens"].(string), "revoked: the issuer changed") {
			t.Fatalf("PATCH to another issuer = %v", out)
		}
		if after := stats(t, movedAS); after.Revocations <= before.Revocations {
			t.Errorf("the provider that issued the tokens saw no revocation: %+v", after)
		}
	})

	t.Run("a change commits before it revokes", func(t *testing.T) {
		changeCommitsFirst(t)
	})
}

// window is what the admin API and the Connectors page showed while a
// connector's old tokens were being revoked.
type window struct {
	url, state, reason string
	other              int // the status of another change made meanwhile
	err                error
}

// changeCommitsFirst changes the URL of a runtime connector whose
// revocation endpoint is a hook, and checks what the hook sees while the
// provider is asked to revoke: the change already in force (the admin
// API shows the new URL, and the old tokens are refused: the connection
// needs a consent), and the registry free (another change goes through
// at once). The new URL never receives a token.
func changeCommitsFirst(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "hooked"})
	upAS := testas.Start(t, testas.Options{Resource: up.URL, Accounts: []string{"alice"}})
	up.SetGuard(upAS.Protect)
	elsewhere := testupstream.StartT(t, testupstream.Options{Name: "elsewhere"})
	seen := make(chan window, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case seen <- duringRevocation():
		default: // the second token of the revocation
		}
	}))
	t.Cleanup(hook.Close)
	added := mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"hooked","url":"`+up.URL+`",
		"auth":{"type":"oauth","oauth":{"registration":"dcr","consent":"shared","insecure_loopback":true,"revocation_endpoint":"`+hook.URL+`/revoke"}}}`)
	consentShared(t, added["auth_url"].(string))
	if got := callEcho(t, "alice", "hooked"); !strings.Contains(got, "hi alice") {
		t.Fatalf("hooked before the change: %q", got)
	}
	out := mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/hooked", `{"url":"`+elsewhere.URL+`"}`)
	revoked, _ := out["revoked"].([]any)
	if len(revoked) != 1 || revoked[0].(map[string]any)["revoked"] != true ||
		out["tokens"] != "revoked: the resource changed; 1 of 1 connections' tokens were revoked at the provider, and every connection is disconnected: connect again" {
		t.Errorf("PATCH url = %v", out)
	}
	select {
	case w := <-seen:
		// The tokens are refused from the commit on (reauth_required,
		// TestGrantOfAChangedConnector), and dropped before the provider
		// is asked to revoke them (disconnected).
		if w.err != nil || w.url != elsewhere.URL || w.state == "active" || !strings.Contains(w.reason, "an admin changed the connector") || w.other != 200 {
			t.Errorf("while the tokens were revoked: %+v; want the change in force, the tokens refused and the registry free", w)
		}
	default:
		t.Fatal("the revocation endpoint was never asked")
	}
	if changes := adminChanges(t, "hooked"); len(changes) == 0 || !strings.Contains(changes[0], "tokens revoked: the resource changed") {
		t.Errorf("the audit log of hooked: %q", changes)
	}
	if got := callEcho(t, "alice", "hooked"); !strings.Contains(got, "an admin changed the connector") {
		t.Errorf("hooked after its URL changed: %q, want a consent needed", got)
	}
	for _, r := range elsewhere.Requests() {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the new URL received a credential: %s %s", r.Method, r.Path)
		}
	}
}

// duringRevocation reads, without a testing.T (it runs in a server's
// goroutine), what the admin API and alice's Connectors page say of
// hooked, and makes another change of the registry, each with a
// deadline: a registry locked for the revocation would hold it.
func duringRevocation() window {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var w window
	var view struct {
		URL string `json:"url"`
	}
	w.err = getJSON(ctx, adminURL+"/mcpgate/connectors/hooked", "", &view)
	w.url = view.URL
	var page struct {
		Connectors []struct {
			ID     string `json:"id"`
			State  string `json:"state"`
			Reason string `json:"disconnect_reason"`
		} `json:"connectors"`
	}
	if err := getJSON(ctx, site+"/connectors", basic("alice"), &page); err != nil {
		w.err = err
	}
	for _, c := range page.Connectors {
		if c.ID == "hooked" {
			w.state, w.reason = c.State, c.Reason
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, adminURL+"/mcpgate/connectors/billing", strings.NewReader(`{"title":"Billing"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		w.err = err
	} else {
		w.other = resp.StatusCode
		resp.Body.Close()
	}
	return w
}

// getJSON decodes the JSON answer to a GET of url, sent with the
// Authorization header authz if not empty.
func getJSON(ctx context.Context, url, authz string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
