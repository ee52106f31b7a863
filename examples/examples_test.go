package examples_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/mark3labs/mcp-go/client"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/caddy-mcpgate"
	"github.com/mcpgate/caddy-mcpgate/examples/demo"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
)

// Ports of their own, so that these tests never meet the root package's
// integration tests, which go test may run at the same time.
const (
	adminPort = 2998
	addr      = "127.0.0.1:9180"
)

// runExample loads an example Caddyfile into a real Caddy, with env set.
func runExample(t *testing.T, file string, env map[string]string) {
	t.Helper()
	env["MCPGATE_ADMIN"] = "localhost:2998"
	env["MCPGATE_ADDR"] = addr
	for k, v := range env {
		t.Setenv(k, v)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort})
	tester.InitServer(string(raw), "caddyfile")
}

// demoUpstream serves the demo MCP server, requiring header to equal value
// when header is set.
func demoUpstream(t *testing.T, header, value string) string {
	h := demo.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if header != "" && r.Header.Get(header) != value {
			http.Error(w, "missing credential", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		// The gateway keeps a notification stream open to its upstream
		// for as long as it runs; cut it, or Close waits for it.
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/mcp"
}

// agent connects a real MCP client to the example's /mcp.
func agent(t *testing.T, headers map[string]string, opts ...client.ClientOption) *client.Client {
	return agenttest.Dial(t, "http://"+addr+"/mcp", headers, opts...)
}

func TestQuickstart(t *testing.T) {
	runExample(t, "quickstart/Caddyfile", map[string]string{"DEMO_URL": demoUpstream(t, "", "")})
	for _, era := range agenttest.Eras {
		c := agent(t, nil, era.Opts...)
		names := agenttest.ToolNames(t, c)
		for _, want := range []string{"demo_echo", "demo_add", "demo_notes_append", "mcpgate_list_connectors"} {
			if !slices.Contains(names, want) {
				t.Errorf("%s is not listed: %v", want, names)
			}
		}
		res, err := agenttest.Call(c, "demo_add", map[string]any{"a": 2, "b": 3})
		if err != nil || res.IsError {
			t.Fatalf("demo_add: %v %+v", err, res)
		}
	}
}

func TestTeam(t *testing.T) {
	runExample(t, "team.caddyfile", map[string]string{
		"DEMO_URL":   demoUpstream(t, "Authorization", "Bearer demo-secret"),
		"DEMO_TOKEN": "demo-secret",
		"NOTES_URL":  demoUpstream(t, "X-Api-Key", "notes-secret"),
		"NOTES_KEY":  "notes-secret",
	})
	login := func(user, pw string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))}
	}
	alice := agenttest.ToolNames(t, agent(t, login("alice", "alice-pw")))
	for _, want := range []string{"demo_notes_append", "notes_echo"} {
		if !slices.Contains(alice, want) {
			t.Errorf("alice does not list %s: %v", want, alice)
		}
	}
	bob := agenttest.ToolNames(t, agent(t, login("bob", "bob-pw")))
	if !slices.Contains(bob, "demo_echo") || slices.Contains(bob, "demo_notes_append") || slices.Contains(bob, "notes_echo") {
		t.Errorf("bob's read-only view is wrong: %v", bob)
	}
}
