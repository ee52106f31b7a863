package mcpmux_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// gateway is a Mux served on loopback, with the caller taken from test
// headers (in production, from Caddy's authentication).
type gateway struct {
	mux *mcpmux.Mux
	srv *httptest.Server
	URL string
}

// testConnector builds a connector for an upstream.
func testConnector(t testing.TB, id string, up *testupstream.Server, auth connectors.Auth) *connectors.Connector {
	t.Helper()
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &connectors.Connector{ID: id, URL: u, Auth: auth, Timeout: 2 * time.Second}
}

// startGateway serves conns with rules.
func startGateway(t testing.TB, conns []*connectors.Connector, rules []grants.Rule, opts ...func(*mcpmux.Options)) *gateway {
	t.Helper()
	policy, err := grants.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	o := mcpmux.Options{Connectors: conns, Policy: policy}
	for _, f := range opts {
		f(&o)
	}
	mux, err := mcpmux.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := grants.Caller{ID: r.Header.Get("X-Test-User")}
		if g := r.Header.Get("X-Test-Groups"); g != "" {
			caller.Groups = strings.Split(g, ",")
		}
		scope := ""
		if rest, ok := strings.CutPrefix(r.URL.Path, "/connectors/"); ok {
			scope, _, _ = strings.Cut(rest, "/")
		}
		mux.ServeMCP(w, r, caller, scope)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		mux.Close()
		srv.Close()
	})
	return &gateway{mux: mux, srv: srv, URL: srv.URL}
}

// The agent's own secrets, which must never reach an upstream.
const (
	agentSecret = "agent-secret-canary"
	agentCookie = "agent-cookie-canary"
)

// eras are the two ways an agent can talk to the gateway.
var eras = agenttest.Eras

// connect opens a real mcp-go client on path as user.
func (g *gateway) connect(t testing.TB, path, user string, groups string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	headers := map[string]string{
		"X-Test-User":   user,
		"Authorization": "Bearer " + agentSecret,
		"Cookie":        "session=" + agentCookie,
	}
	if groups != "" {
		headers["X-Test-Groups"] = groups
	}
	return agenttest.Dial(t, g.URL+path, headers, opts...)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func toolNames(t testing.TB, c *client.Client) []string {
	return agenttest.ToolNames(t, c)
}

func callTool(t testing.TB, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	return agenttest.Call(c, name, args)
}
