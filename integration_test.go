package mcpgate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/caddy-mcpgate"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// site is where the test Caddy serves the gateway.
const site = "http://127.0.0.1:9080"

// passwords of the test users, whom Caddy's basic_auth identifies.
var passwords = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// upstreams are the real MCP servers behind the test gateway: one with a
// static bearer that speaks only the legacy era, one without auth that
// speaks only 2026-07-28, and one with a custom header that speaks both.
type upstreams struct{ legacy, modern, both *testupstream.Server }

func startUpstreams(t *testing.T) upstreams {
	return upstreams{
		legacy: testupstream.StartT(t, testupstream.Options{Name: "legacy", Era: testupstream.LegacyOnly, BearerToken: "legacy-upstream-secret"}),
		modern: testupstream.StartT(t, testupstream.Options{Name: "modern", Era: testupstream.ModernOnly}),
		both:   testupstream.StartT(t, testupstream.Options{Name: "both", HeaderName: "X-Api-Key", HeaderValue: "both-upstream-secret"}),
	}
}

// startCaddy runs a real Caddy with the mcpgate module in front of ups.
// alice is in group ai-users and sees everything; bob is in readers and
// sees only the read-only tools of "legacy" and the prompts of "modern".
func startCaddy(t *testing.T, ups upstreams) *caddytest.Tester {
	t.Setenv("LEGACY_TOKEN", "legacy-upstream-secret")
	t.Setenv("BOTH_KEY", "both-upstream-secret")
	cfg := fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
		groups {groups}
		max_request_body 64KiB
		connector legacy {
			url %s
			auth bearer {env.LEGACY_TOKEN}
			timeout 2s
		}
		connector modern {
			url %s
			timeout 2s
		}
		connector both {
			url %s
			auth header X-Api-Key {env.BOTH_KEY}
			timeout 2s
		}
		grant {
			src group:ai-users
			connectors legacy modern both
		}
		grant {
			src group:readers
			connectors legacy
			tools legacy/*
			prompts modern/*
			operations read
		}
	}
}
%s {
	basic_auth {
%s	}
	map {http.auth.user.id} {groups} {
		alice ai-users
		bob   readers
	}
	header >X-Mcpgate-User {http.mcpgate.user}
	header >X-Mcpgate-Connector {http.mcpgate.connector}
	header >X-Mcpgate-Tool {http.mcpgate.tool}
	mcpgate
}
http://127.0.0.1:9081 {
	mcpgate
}
`, ups.legacy.URL, ups.modern.URL, ups.both.URL, site, basicAuthUsers(t, passwords))
	tester := sitetest.NewTester(t, 0)
	tester.InitServer(cfg, "caddyfile")
	return tester
}

// basicAuthUsers is the body of a basic_auth block with the test users,
// indented for a site block's directive.
func basicAuthUsers(t testing.TB, passwords map[string]string) string {
	t.Helper()
	return sitetest.BasicAuthUsers(t, passwords)
}

// basic returns the Authorization header of a test user.
func basic(user string) string { return sitetest.Basic(user, passwords[user]) }

// dial connects a real mcp-go client as user to path.
func dial(t *testing.T, path, user string, opts ...client.ClientOption) *client.Client {
	return agenttest.Dial(t, site+path, map[string]string{
		"Authorization": basic(user), "Cookie": "session=agent-cookie-canary",
	}, opts...)
}

func TestIntegration(t *testing.T) {
	ups := startUpstreams(t)
	tester := startCaddy(t, ups)

	for _, era := range agenttest.Eras {
		t.Run("names and grants/"+era.Name, func(t *testing.T) {
			alice := dial(t, "/mcp", "alice", era.Opts...)
			names := agenttest.ToolNames(t, alice)
			for _, want := range []string{"legacy_echo", "modern_echo", "both_echo", "both_delete_everything", "mcpgate_list_connectors"} {
				if !slices.Contains(names, want) {
					t.Errorf("alice does not list %s: %v", want, names)
				}
			}
			bob := dial(t, "/mcp", "bob", era.Opts...)
			bobNames := agenttest.ToolNames(t, bob)
			for _, name := range bobNames {
				if name != "mcpgate_list_connectors" && !strings.HasPrefix(name, "legacy_") {
					t.Errorf("bob lists %s", name)
				}
			}
			if !slices.Contains(bobNames, "legacy_echo") || slices.Contains(bobNames, "legacy_delete_everything") {
				t.Errorf("bob's read-only view is wrong: %v", bobNames)
			}
			for _, name := range []string{"legacy_delete_everything", "both_echo", "modern_echo", "nosuch_echo"} {
				if _, err := agenttest.Call(bob, name, nil); err == nil || !strings.Contains(err.Error(), "not granted") {
					t.Errorf("bob calls %s: err = %v", name, err)
				}
			}
			res, err := agenttest.Call(alice, "both_echo", map[string]any{"message": "through caddy"})
			if err != nil || res.Content[0].(mcp.TextContent).Text != "through caddy" {
				t.Fatalf("alice calls both_echo: %v %+v", err, res)
			}
			one := dial(t, "/connectors/modern/mcp", "alice", era.Opts...)
			if names := agenttest.ToolNames(t, one); !slices.Contains(names, "echo") || slices.Contains(names, "modern_echo") {
				t.Errorf("/connectors/modern/mcp lists %v", names)
			}
		})
	}

	t.Run("fidelity", func(t *testing.T) {
		direct := agenttest.Dial(t, ups.both.URL, map[string]string{"X-Api-Key": "both-upstream-secret"})
		want, err := agenttest.Call(direct, "rich", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := agenttest.Call(dial(t, "/mcp", "alice"), "both_rich", nil)
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(wantJSON, gotJSON) {
			t.Errorf("rich through the gateway differs:\n got %s\nwant %s", gotJSON, wantJSON)
		}
	})

	t.Run("credential custody", func(t *testing.T) {
		for name, up := range map[string]*testupstream.Server{"legacy": ups.legacy, "modern": ups.modern, "both": ups.both} {
			for _, r := range up.Requests() {
				for _, h := range []string{"Authorization", "Cookie"} {
					v := r.Header.Get(h)
					if strings.Contains(v, "Basic") || strings.Contains(v, "canary") {
						t.Errorf("upstream %s received the agent's %s: %q", name, h, v)
					}
				}
			}
		}
		resp, err := http.Get("http://localhost:2999/config/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(body, []byte("legacy-upstream-secret")) || bytes.Contains(body, []byte("both-upstream-secret")) {
			t.Error("the admin API's /config/ shows an upstream secret")
		}
	})

	t.Run("placeholders", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"modern_echo","arguments":{"message":"x"}}}`
		resp := post(t, "/mcp", "alice", body, map[string]string{
			"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "modern_echo",
		})
		for h, want := range map[string]string{"X-Mcpgate-User": "alice", "X-Mcpgate-Connector": "modern", "X-Mcpgate-Tool": "echo"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name, user, body string
			status           int
			want             string
		}{
			{"not JSON", "alice", "hello", 400, `"code":-32700`},
			{"duplicate member", "alice", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, 400, `"code":-32600`},
			{"too large", "alice", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`, 413, "larger than the limit"},
			{"no identity", "", `{}`, 401, "authentication is missing"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := post(t, "/mcp", tt.user, tt.body, nil)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
					t.Errorf("got %d %s, want %d with %q", resp.StatusCode, body, tt.status, tt.want)
				}
			})
		}
	})

	t.Run("dead upstream", func(t *testing.T) {
		ups.modern.Kill()
		alice := dial(t, "/mcp", "alice")
		// The cache still holds modern's list; ask for a fresh view.
		names := agenttest.ToolNames(t, alice)
		if !slices.Contains(names, "legacy_echo") || !slices.Contains(names, "both_echo") {
			t.Fatalf("the live connectors' tools are missing: %v", names)
		}
		if _, err := agenttest.Call(alice, "modern_echo", map[string]any{"message": "x"}); err == nil {
			t.Error("a call to the dead upstream succeeded")
		}
		if names := agenttest.ToolNames(t, alice); slices.Contains(names, "modern_echo") || !slices.Contains(names, "both_echo") {
			t.Errorf("after the failed call, tools are %v", names)
		}
		req, _ := http.NewRequest(http.MethodGet, site+"/connectors", nil)
		req.Header.Set("Authorization", basic("alice"))
		resp := tester.AssertResponseCode(req, 200)
		var out struct {
			Connectors []struct{ ID, Status, Reason string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses := map[string]string{}
		for _, c := range out.Connectors {
			statuses[c.ID] = c.Status
		}
		if statuses["modern"] != "error" || statuses["legacy"] != "ready" || statuses["both"] != "ready" {
			t.Errorf("GET /connectors = %+v", out.Connectors)
		}
	})
}

// post sends a raw body to the gateway as user.
func post(t *testing.T, path, user, body string, headers map[string]string) *http.Response {
	t.Helper()
	base := site
	if user == "" {
		base = "http://127.0.0.1:9081" // the site without authentication
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if user != "" {
		req.Header.Set("Authorization", basic(user))
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestNoGlobalBlock checks the defaults: with only the directive, the
// gateway works and lists nothing.
func TestNoGlobalBlock(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte(passwords["alice"]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tester := sitetest.NewTester(t, 0)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	default_bind 127.0.0.1
}
%s {
	basic_auth {
		alice %s
	}
	mcpgate
}
`, site, h), "caddyfile")
	for _, era := range agenttest.Eras {
		if names := agenttest.ToolNames(t, dial(t, "/mcp", "alice", era.Opts...)); len(names) != 0 {
			t.Errorf("%s: tools = %v, want none", era.Name, names)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, site+"/connectors", nil)
	req.Header.Set("Authorization", basic("alice"))
	tester.AssertResponse(req, 200, `{"connectors":[]}`)
	req, _ = http.NewRequest(http.MethodGet, site+"/connectors/none/mcp", nil)
	req.Header.Set("Authorization", basic("alice"))
	tester.AssertResponseCode(req, 404)
}

// TestHandleErrors checks that a site's handle_errors routes see the
// gateway's failures, with their status and headers, where a site without
// them gets the JSON body (TestNoGlobalBlock and others).
func TestHandleErrors(t *testing.T) {
	tester := sitetest.NewTester(t, 0)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	default_bind 127.0.0.1
	mcpgate {
		identity {http.request.header.X-User}
	}
}
%s {
	mcpgate
	handle_errors {
		respond "handled {err.status_code}: {err.message}"
	}
}
`, site), "caddyfile")
	for _, tc := range []struct {
		method, path, user string
		status             int
		body, allow        string
	}{
		{http.MethodGet, "/connectors", "", 401, "handled 401: authentication is missing: the gateway could not tell who is calling", ""},
		{http.MethodPut, "/connectors", "alice", 405, "handled 405: GET /connectors lists your connectors", "GET, HEAD"},
		{http.MethodGet, "/connectors/none/nothing", "", 404, "handled 404: no such connector or endpoint", ""},
		{http.MethodGet, "/connectors/none/api/x", "alice", 404, "handled 404: no such connector or endpoint", ""},
	} {
		req, _ := http.NewRequest(tc.method, site+tc.path, nil)
		if tc.user != "" {
			req.Header.Set("X-User", tc.user)
		}
		resp := tester.AssertResponseCode(req, tc.status)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(body), tc.body) {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, body, tc.body)
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

// TestReload checks that a config reload keeps agents' sessions while the
// new grants apply at once to every request.
func TestReload(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "both"})
	h, err := bcrypt.GenerateFromPassword([]byte(passwords["alice"]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	config := func(tools string) string {
		return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	default_bind 127.0.0.1
	mcpgate {
		connector both {
			url %s
		}
		grant {
			src user:alice
			tools %s
		}
	}
}
%s {
	basic_auth {
		alice %s
	}
	mcpgate
}
`, up.URL, tools, site, h)
	}
	tester := sitetest.NewTester(t, 0)
	tester.InitServer(config("both/**"), "caddyfile")
	alice := dial(t, "/mcp", "alice", agenttest.Eras[0].Opts...)
	if _, err := agenttest.Call(alice, "both_rich", nil); err != nil {
		t.Fatalf("before the reload: %v", err)
	}

	tester.InitServer(config("both/echo"), "caddyfile")
	if res, err := agenttest.Call(alice, "both_echo", map[string]any{"message": "still here"}); err != nil || res.Content[0].(mcp.TextContent).Text != "still here" {
		t.Fatalf("the session did not survive the reload: %v", err)
	}
	if _, err := agenttest.Call(alice, "both_rich", nil); err == nil || !strings.Contains(err.Error(), "not granted") {
		t.Errorf("after the reload narrowed the grant, both_rich: %v", err)
	}
}
