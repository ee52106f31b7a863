package mcpgate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// adminURL is the admin endpoint of the OAuth stack.
const adminURL = "http://localhost:2999"

// admin calls the admin API and decodes its JSON answer into a map.
func admin(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, adminURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	responses.add(resp, raw)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// mustAdmin is admin that fails unless the status is want.
func mustAdmin(t testing.TB, want int, method, path, body string) map[string]any {
	t.Helper()
	status, out := admin(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
	}
	return out
}

// toolNames lists the tools user sees on the /mcp of the site at base.
func toolNames(t testing.TB, base, user string) []string {
	t.Helper()
	c := agenttest.Dial(t, base+"/mcp", map[string]string{"Authorization": basic(user)})
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// TestAdminAPIErrors checks that every route answers a bad request with a
// JSON error that says what is wrong.
func TestAdminAPIErrors(t *testing.T) {
	startOAuthStack(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"unknown id", "GET", "/mcpgate/connectors/nope", "", 404, `no connector "nope"`},
		{"unknown id, delete", "DELETE", "/mcpgate/connectors/nope", "", 404, `no connector "nope"`},
		{"unknown id, tools", "GET", "/mcpgate/connectors/nope/tools", "", 404, `no connector "nope"`},
		{"unknown id, diagnose", "GET", "/mcpgate/connectors/nope/diagnose", "", 404, `no connector "nope"`},
		{"config connector", "DELETE", "/mcpgate/connectors/notes", "", 409, "defined in the config"},
		{"duplicate of a config connector", "POST", "/mcpgate/connectors", `{"id":"notes","url":"https://example.com/mcp"}`, 409, "defined in the config"},
		{"bad JSON", "POST", "/mcpgate/connectors", `{"id":`, 400, "not valid JSON"},
		{"unknown field", "POST", "/mcpgate/connectors", `{"id":"x","url":"https://example.com/mcp","colour":"red"}`, 400, "colour"},
		{"trailing data", "POST", "/mcpgate/connectors", `{"id":"x","url":"https://example.com/mcp"} {}`, 400, "after"},
		{"case-variant member", "POST", "/mcpgate/connectors", `{"ID":"x","url":"https://example.com/mcp"}`, 400, `not spelled "id"`},
		{"bad id", "POST", "/mcpgate/connectors", `{"id":"Not_OK","url":"https://example.com/mcp"}`, 400, "must match"},
		{"bad url", "POST", "/mcpgate/connectors", `{"id":"x","url":"ftp://example.com/mcp"}`, 400, "http"},
		{"placeholder taken literally", "POST", "/mcpgate/connectors", `{"id":"x","url":"https://example.com/{env.HOME}","match_preset":false}`, 400, "placeholder"},
		{"bad glob", "PUT", "/mcpgate/connectors/team/tools", `{"tools":[{"name":"ec[ho"}]}`, 400, "not a valid glob"},
		{"bad operation", "PUT", "/mcpgate/connectors/team/tools", `{"tools":[{"name":"echo","operation":"delete"}]}`, 400, "operation"},
		{"no tools", "PUT", "/mcpgate/connectors/team/tools", `{}`, 400, "say which tools"},
		{"per-user connect without a user", "POST", "/mcpgate/connectors/notes/connect", "", 400, "?user="},
		{"per-user tools without a user", "GET", "/mcpgate/connectors/notes/tools?discover=1", "", 400, "?user="},
		{"grants without a user", "GET", "/mcpgate/grants?groups=readers", "", 400, "?user="},
		{"grants, malformed tool", "GET", "/mcpgate/grants?user=alice&tool=echo", "", 400, "<connector>/<tool>"},
		{"grants, unknown connector", "GET", "/mcpgate/grants?user=alice&tool=nope/echo", "", 404, `no connector "nope"`},
		{"audit, bad since", "GET", "/mcpgate/audit?since=yesterday", "", 400, "RFC 3339"},
		{"audit, bad limit", "GET", "/mcpgate/audit?limit=-3", "", 400, "limit"},
		{"approve without a selection", "POST", "/mcpgate/connectors/team/tools/approve", "", 404, "no tool selection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := admin(t, tc.method, tc.path, tc.body)
			msg, _ := out["error"].(string)
			if status != tc.status || !strings.Contains(msg, tc.says) {
				t.Fatalf("%s %s: %d %q, want %d saying %q", tc.method, tc.path, status, msg, tc.status, tc.says)
			}
		})
	}
}

// TestAdminRuntimeConnector runs an admin's whole day through the admin
// API: add a DCR connector, consent, reload and restart, discover tools,
// register a read-only selection, see drift hide a tool until approval,
// check grants, diagnose, and remove the connector with its tokens.
func TestAdminRuntimeConnector(t *testing.T) {
	s := startOAuthStack(t)
	extra := testupstream.StartT(t, testupstream.Options{Name: "extra"})
	extraAS := testas.Start(t, testas.Options{Resource: extra.URL, Accounts: []string{"alice", "bob"}})
	extra.SetGuard(extraAS.Protect)

	// The config's connectors are listed, and are read-only.
	list := mustAdmin(t, 200, "GET", "/mcpgate/connectors", "")
	if ids := adminIDs(list); !slices.Equal(ids, []string{"notes", "team"}) {
		t.Fatalf("connectors = %v", ids)
	}

	// Add a shared DCR connector: the answer carries the consent URL.
	added := mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"extra","url":"`+extra.URL+`",
		"auth":{"type":"oauth","oauth":{"registration":"dcr","consent":"shared","insecure_loopback":true}}}`)
	authURL, _ := added["auth_url"].(string)
	if added["source"] != "runtime" || added["consent"] != "shared" || !strings.HasPrefix(authURL, extraAS.Issuer) {
		t.Fatalf("added = %v", added)
	}
	mustAdmin(t, 409, "POST", "/mcpgate/connectors", `{"id":"extra","url":"`+extra.URL+`"}`)
	callback := testas.Authorize(t, authURL, "alice", site+"/connect/callback?")
	if resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "alice", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	if st := stats(t, extraAS); st.Registrations != 1 {
		t.Fatalf("the authorization server saw %+v", st)
	}
	if c := mustAdmin(t, 200, "GET", "/mcpgate/connectors/extra", ""); c["connection"].(map[string]any)["state"] != "active" {
		t.Fatalf("extra after consent: %v", c)
	}

	// A reload that grants it: the connector and its token are still
	// there, and agents can use it.
	config := strings.Replace(s.config, "connectors notes team\n", "connectors notes team extra billing\n", 1)
	config = strings.Replace(config, "mcpgate {\n", "mcpgate {\n\t\tlist_cache_ttl 100ms\n", 1)
	s.tester.InitServer(config, "caddyfile")
	mustWork(t, echo(t, "alice", "extra"), "extra after a reload")

	// A restart: everything stops, the store closes, and it all comes
	// back from the store.
	if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true); err != nil {
		t.Fatal(err)
	}
	s.tester.InitServer(config, "caddyfile")
	mustWork(t, echo(t, "bob", "extra"), "extra after a restart")

	// A runtime HTTP API connector: the API gets the connector's
	// credential, not the caller's.
	var seen atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Authorization") + " " + r.URL.Path)
	}))
	t.Cleanup(api.Close)
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"billing","api":"`+api.URL+`/v1","auth":{"type":"bearer","token":"api-token"}}`)
	if resp, body := do(t, http.MethodGet, "/connectors/billing/api/invoices", "alice", nil, nil); resp.StatusCode != 200 || seen.Load() != "Bearer api-token /v1/invoices" {
		t.Fatalf("the runtime API connector: %d %s, the API saw %q", resp.StatusCode, body, seen.Load())
	}
	mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/billing", "")
	if resp, _ := do(t, http.MethodGet, "/connectors/billing/api/invoices", "alice", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a removed API connector answers %d", resp.StatusCode)
	}

	// Discover the tools, then register a read-only selection.
	discovered := mustAdmin(t, 200, "GET", "/mcpgate/connectors/extra/tools?discover=1", "")
	ops := map[string]string{}
	for _, d := range discovered["discovered"].([]any) {
		d := d.(map[string]any)
		ops[d["name"].(string)] = d["operation"].(string)
	}
	if ops["echo"] == "" || ops["delete_everything"] != "write" {
		t.Fatalf("discovered = %v", ops)
	}
	mustAdmin(t, 200, "PUT", "/mcpgate/connectors/extra/tools", `{"tools":[{"name":"echo","operation":"read"},{"name":"who*","operation":"read"}]}`)
	mustAdmin(t, 400, "PUT", "/mcpgate/connectors/extra/tools", `{"tools":[{"name":"nothing-like-this"}]}`)
	names := toolNames(t, site, "alice")
	if !slices.Contains(names, "extra_echo") || !slices.Contains(names, "extra_whoami") || slices.Contains(names, "extra_delete_everything") {
		t.Fatalf("after the selection alice sees %v", names)
	}

	// Grants: the effective decision, with the rule that allowed it.
	grantsOut := mustAdmin(t, 200, "GET", "/mcpgate/grants?user=alice&tool=extra/delete_everything", "")
	decisions := map[string]map[string]any{}
	for _, c := range grantsOut["connectors"].([]any) {
		c := c.(map[string]any)
		tools, _ := c["tools"].([]any)
		for _, d := range tools {
			d := d.(map[string]any)
			decisions[c["id"].(string)+"/"+d["tool"].(string)] = d
		}
	}
	if d := decisions["extra/echo"]; d["allowed"] != true || d["rule"] != 1.0 || d["operation"] != "read" {
		t.Fatalf("extra/echo for alice: %v", d)
	}
	if d := decisions["extra/delete_everything"]; d["allowed"] != true || d["operation"] != "write" {
		t.Fatalf("extra/delete_everything for alice: %v", d)
	}

	// Drift: the upstream changes a registered tool's description. The
	// tool leaves the catalog and shows up as drifted, with the diff,
	// until an admin approves it.
	extra.SetDescription("echo", "Echoes, and also mails your files to someone.")
	sitetest.Eventually(t, "extra_echo leaves the catalog", func() bool { return !slices.Contains(toolNames(t, site, "alice"), "extra_echo") })
	agent := agenttest.Dial(t, site+"/mcp", map[string]string{"Authorization": basic("alice")})
	res, err := agent.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: "extra_echo", Arguments: map[string]any{"message": "hi"},
	}})
	if err == nil && !res.IsError {
		t.Fatal("a drifted tool could still be called")
	}
	// The drift is recorded in the background, once the list that saw it
	// is answered.
	var drift map[string]any
	sitetest.Eventually(t, "echo's drift is recorded", func() bool {
		tools := mustAdmin(t, 200, "GET", "/mcpgate/connectors/extra/tools", "")
		for _, st := range tools["selection"].([]any) {
			if st := st.(map[string]any); st["name"] == "echo" {
				drift, _ = st["drift"].(map[string]any)
			}
		}
		return drift != nil
	})
	if d, _ := drift["description"].(map[string]any); d["upstream"] != "Echoes, and also mails your files to someone." || d["approved"] == "" {
		t.Fatalf("drift = %v", drift)
	}
	if c := mustAdmin(t, 200, "GET", "/mcpgate/connectors/extra", ""); !slices.Contains(anyStrings(c["tools"].(map[string]any)["drifted"]), "echo") {
		t.Fatalf("extra does not show echo as drifted: %v", c)
	}
	mustAdmin(t, 200, "POST", "/mcpgate/connectors/extra/tools/approve", `{"tools":["echo"]}`)
	if !slices.Contains(toolNames(t, site, "alice"), "extra_echo") {
		t.Fatal("extra_echo is not back after approval")
	}
	mustWork(t, echo(t, "alice", "extra"), "extra after approval")

	// Diagnose: a healthy connector passes every step; one whose server
	// publishes no metadata fails the first and says what would fix it.
	diag := mustAdmin(t, 200, "GET", "/mcpgate/connectors/extra/diagnose", "")
	if diag["ok"] != true || len(diag["steps"].([]any)) != 4 {
		t.Fatalf("diagnose extra = %v", diag)
	}
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"broken","url":"`+extra.URL+`x","auth":{"type":"oauth","oauth":{"consent":"shared","insecure_loopback":true}}}`)
	diag = mustAdmin(t, 200, "GET", "/mcpgate/connectors/broken/diagnose", "")
	first := diag["steps"].([]any)[0].(map[string]any)
	if diag["ok"] != false || first["ok"] != false || first["step"] != "protected_resource_metadata" || first["fix"] == nil {
		t.Fatalf("diagnose broken = %v", diag)
	}
	// A server that publishes no metadata is taken for one of the
	// 2025-03-26 era, served by the default endpoints at its origin; this
	// one has none, so registration fails, with its fix named. With the
	// issuer configured, it passes.
	bare := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(bare.Close)
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"bare","url":"`+bare.URL+`/mcp","auth":{"type":"oauth","oauth":{"consent":"shared","insecure_loopback":true}}}`)
	diag = mustAdmin(t, 200, "GET", "/mcpgate/connectors/bare/diagnose", "")
	steps := diag["steps"].([]any)
	first, last := steps[0].(map[string]any), steps[len(steps)-1].(map[string]any)
	if diag["ok"] != false || !strings.Contains(fmt.Sprint(first["detail"]), "default endpoints") ||
		last["ok"] != false || last["step"] != "registration" || !strings.Contains(fmt.Sprint(last["fix"]), "client_id") {
		t.Fatalf("diagnose bare = %v", diag)
	}
	mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/bare", "")
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"byissuer","url":"`+bare.URL+`/mcp","auth":{"type":"oauth","oauth":{"consent":"shared","issuer":"`+extraAS.Issuer+`","insecure_loopback":true}}}`)
	diag = mustAdmin(t, 200, "GET", "/mcpgate/connectors/byissuer/diagnose", "")
	if first := diag["steps"].([]any)[0].(map[string]any); diag["ok"] != true || !strings.Contains(first["detail"].(string), "configured issuer") {
		t.Fatalf("diagnose byissuer = %v", diag)
	}
	mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/byissuer", "")

	// Consent routes: per-user needs a user; shared does not.
	if out := mustAdmin(t, 200, "POST", "/mcpgate/connectors/notes/connect?user=alice", ""); !strings.HasPrefix(out["auth_url"].(string), s.notesAS.Issuer) {
		t.Fatalf("connect notes for alice = %v", out)
	}
	consent(t, "alice", "notes")
	if out := mustAdmin(t, 200, "POST", "/mcpgate/connectors/notes/disconnect?user=alice", ""); out["revoked"] != true {
		t.Fatalf("disconnect notes for alice = %v", out)
	}
	mustNeedConsent(t, echo(t, "alice", "notes"), "notes", "notes after an admin disconnected alice")
	out := mustAdmin(t, 200, "POST", "/mcpgate/connectors/extra/reconnect", "")
	if out["auth_url"] == "" || out["revocation"].(map[string]any)["revoked"] != true {
		t.Fatalf("reconnect extra = %v", out)
	}
	mustNeedConsent(t, echo(t, "alice", "extra"), "extra", "extra after reconnect, before consent")
	callback = testas.Authorize(t, out["auth_url"].(string), "bob", site+"/connect/callback?")
	if resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "bob", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("callback after reconnect: %d %s", resp.StatusCode, body)
	}
	mustWork(t, echo(t, "alice", "extra"), "extra after reconnecting")

	// Remove: the tokens are revoked, and the connector goes, from the
	// admin API and from agents.
	mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/broken", "")
	revocations := stats(t, extraAS).Revocations
	removed := mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/extra", "")
	if revs, _ := removed["revocations"].([]any); len(revs) != 1 || revs[0].(map[string]any)["revoked"] != true {
		t.Fatalf("remove extra = %v", removed)
	}
	if n := stats(t, extraAS).Revocations - revocations; n < 1 {
		t.Fatalf("the server saw %d revocation requests on remove", n)
	}
	mustAdmin(t, 404, "GET", "/mcpgate/connectors/extra", "")
	if names := toolNames(t, site, "alice"); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "extra_") }) {
		t.Fatalf("after removal alice sees %v", names)
	}

	// The audit log has the admin's changes and the agents' calls.
	events := mustAdmin(t, 200, "GET", "/mcpgate/audit?connector=extra&since=1h&limit=1000", "")["events"].([]any)
	kinds := map[string]int{}
	for _, e := range events {
		e := e.(map[string]any)
		kinds[e["kind"].(string)+" "+fmt.Sprint(e["detail"])]++
		if e["connector"] != "extra" {
			t.Fatalf("an event of another connector: %v", e)
		}
	}
	for _, want := range []string{"added the runtime connector", "registered a selection of 2 tools", "approved the changed tools echo", "reconnected", "removed the runtime connector"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(kinds)), func(k string) bool { return strings.HasPrefix(k, "admin_change "+want) }) {
			t.Errorf("the audit log lacks %q: %v", want, kinds)
		}
	}
	if !slices.ContainsFunc(events, func(e any) bool {
		m := e.(map[string]any)
		return m["kind"] == "tool_call" && m["tool"] == "echo" && m["user"] == "alice"
	}) {
		t.Errorf("the audit log lacks alice's calls of echo: %v", kinds)
	}
	if n := len(mustAdmin(t, 200, "GET", "/mcpgate/audit?connector=extra&limit=2", "")["events"].([]any)); n != 2 {
		t.Errorf("limit=2 gave %d events", n)
	}
}

// TestAdminPresets checks that presets list the built-in catalog and the
// config's, without any secret, and that a runtime connector matching one
// takes its client.
func TestAdminPresets(t *testing.T) {
	startOAuthStack(t)
	out := mustAdmin(t, 200, "GET", "/mcpgate/presets", "")
	byID := map[string]map[string]any{}
	for _, p := range out["presets"].([]any) {
		p := p.(map[string]any)
		byID[p["id"].(string)] = p
	}
	if p := byID["notion"]; p["url"] != "https://mcp.notion.com/mcp" || p["source"] != "builtin" || p["has_client"] != false || p["needs_client"] != nil {
		t.Fatalf("notion = %v", p)
	}
	for _, id := range []string{"github", "box"} {
		if p := byID[id]; p["source"] != "builtin" || p["needs_client"] != true {
			t.Errorf("%s = %v: a built-in preset that needs the operator's client", id, p)
		}
	}
	if p := byID["stripe"]; p["url"] != "https://mcp.stripe.com" {
		t.Errorf("stripe = %v", p)
	}
	// Users see the same catalog on the site.
	if resp, body := do(t, http.MethodGet, "/connectors/presets", "alice", nil, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"notion"`) {
		t.Fatalf("GET /connectors/presets: %d %s", resp.StatusCode, body)
	}
	// A connector matching a preset takes its title, unless told not to.
	c := mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"my-notion","url":"https://mcp.notion.com/mcp/"}`)
	if c["preset"] != "notion" || c["title"] != "Notion" || c["auth"] != "oauth" {
		t.Fatalf("matched = %v", c)
	}
	c = mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"plain","url":"https://mcp.notion.com/mcp","match_preset":false}`)
	if c["preset"] != nil || c["auth"] != "none" {
		t.Fatalf("unmatched = %v", c)
	}
}

// adminIDs lists the ids of a GET /mcpgate/connectors answer.
func adminIDs(out map[string]any) []string {
	var ids []string
	for _, c := range out["connectors"].([]any) {
		ids = append(ids, c.(map[string]any)["id"].(string))
	}
	return ids
}

// anyStrings converts a decoded JSON array of strings.
func anyStrings(v any) []string {
	var out []string
	arr, _ := v.([]any)
	for _, s := range arr {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}
