package mcpmux_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestDNSRebinding sends requests whose Host or Origin names another
// site, as a page that rebinds its name to the gateway's address would,
// to both MCP endpoints in both eras, and checks that only the gateway's
// own names get through.
func TestDNSRebinding(t *testing.T) {
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	rules := []grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"a/echo"}}}
	plain := startGateway(t, conns, rules)
	named := startGateway(t, conns, rules, func(o *mcpmux.Options) {
		o.AllowedHosts = []string{"mcp.example.com", "*.corp.example"}
	})
	port := func(g *gateway) string { u, _ := url.Parse(g.URL); return u.Port() }
	tests := []struct {
		name   string
		g      *gateway
		host   string // "" keeps the URL's
		origin string
		want   int
	}{
		{"own address", plain, "", "", 200},
		{"localhost", plain, "localhost:" + port(plain), "", 200},
		{"localhost subdomain", plain, "app.localhost", "", 200},
		{"IPv6 loopback", plain, "[::1]:" + port(plain), "", 200},
		{"own Origin", plain, "", plain.URL, 200},
		{"rebound name", plain, "evil.example.com", "", 403},
		{"rebound name and Origin", plain, "evil.example.com:" + port(plain), "http://evil.example.com:" + port(plain), 403},
		{"rebound name with loopback prefix", plain, "localhost.evil.example", "", 403},
		{"other site's Origin", plain, "", "http://evil.example.com", 403},
		{"public IP", plain, "203.0.113.7", "", 403},
		{"configured name", named, "mcp.example.com", "https://mcp.example.com", 200},
		{"configured name with port", named, "MCP.example.com:8443", "", 200},
		{"wildcard name", named, "a.corp.example", "", 200},
		{"wildcard is not the apex", named, "corp.example", "", 403},
		{"unconfigured name", named, "evil.example.com", "", 403},
		{"loopback still", named, "127.0.0.1:" + port(named), "", 200},
		{"configured Host, rebound Origin", named, "mcp.example.com", "http://evil.example.com", 403},
	}
	for _, era := range []string{v20251125, v20260728} {
		for _, tt := range tests {
			for _, path := range []string{"/mcp", "/connectors/a/mcp"} {
				t.Run(era+"/"+tt.name+path, func(t *testing.T) {
					c := newRaw(t, tt.g.URL+path, agentHeader("alice", ""))
					c.version = era
					method, params := "server/discover", map[string]any{}
					if era != v20260728 {
						c.version = ""
						method, params = "initialize", map[string]any{
							"protocolVersion": era, "capabilities": map[string]any{},
							"clientInfo": map[string]any{"name": "raw", "version": "1"},
						}
					}
					body, h := c.request(1, method, params)
					h.Set("Host", tt.host)
					h.Set("Origin", tt.origin)
					r := c.post(body, h)
					if r.status != tt.want {
						t.Fatalf("got HTTP %d, want %d: %s", r.status, tt.want, r.body)
					}
					if tt.want == 403 && !strings.Contains(string(r.body), "not one of the gateway's names") {
						t.Errorf("the refusal does not say why: %s", r.body)
					}
				})
			}
		}
	}
}

// TestHostLeftToCaddy checks that a gateway on an address other than
// loopback, with no names configured, leaves the Host to Caddy's site
// matching, and that one with names checks them there too.
func TestHostLeftToCaddy(t *testing.T) {
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	rules := []grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"a/echo"}}}
	for _, tt := range []struct {
		hosts []string
		want  int
	}{{nil, 200}, {[]string{"mcp.example.com"}, 403}} {
		g := startGateway(t, conns, rules, func(o *mcpmux.Options) { o.AllowedHosts = tt.hosts })
		// httptest.NewRequest carries no local address: not loopback.
		req := httptest.NewRequest(http.MethodPost, "http://gateway.internal/mcp", strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		w := httptest.NewRecorder()
		g.mux.ServeMCP(w, req, grants.Caller{ID: "alice"}, "")
		if w.Code != tt.want {
			t.Errorf("hosts %v: got HTTP %d, want %d: %s", tt.hosts, w.Code, tt.want, w.Body)
		}
	}
}
