package mcpmux_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// statelessPaths are the agent endpoints every stateless rule holds on:
// the aggregated one and a connector's own.
var statelessPaths = []string{"/mcp", "/connectors/a/mcp"}

// TestModernRemovedMethods: at 2026-07-28 initialize, ping and
// logging/setLevel are removed methods (SEP-2575), answered as any method
// the server does not implement: HTTP 404 with JSON-RPC -32601
// (Streamable HTTP, "Protocol Version Header"). A 2026-07-28 initialize
// opens no legacy session.
func TestModernRemovedMethods(t *testing.T) {
	t.Parallel()
	g := statelessGateway(t)
	for _, path := range statelessPaths {
		c := dialRaw(t, g.URL+path, agentHeader("alice", ""), v20260728)
		for _, tc := range []struct {
			method string
			params any
		}{
			{"initialize", map[string]any{"protocolVersion": v20260728, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "raw", "version": "1"}}},
			{"ping", nil},
			{"logging/setLevel", map[string]any{"level": "debug"}},
		} {
			r := c.call(tc.method, tc.params)
			if r.status != http.StatusNotFound || r.code() != -32601 || r.err.Message == "" {
				t.Errorf("%s %s: got HTTP %d code %d, want HTTP 404 code -32601: %s", path, tc.method, r.status, r.code(), r.body)
			}
			if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
				t.Errorf("%s %s: a 2026-07-28 request opened session %q", path, tc.method, sid)
			}
		}
		// The endpoint still serves the era's methods.
		c.result("tools/list", nil)
	}
}

// TestLegacyEraPingAndSetLevel: the legacy era still answers ping and
// logging/setLevel with an empty result, on both endpoints.
func TestLegacyEraPingAndSetLevel(t *testing.T) {
	t.Parallel()
	g := statelessGateway(t)
	for _, path := range statelessPaths {
		for _, version := range []string{v20250326, v20251125} {
			c := dialRaw(t, g.URL+path, agentHeader("alice", ""), version)
			for _, method := range []string{"ping", "logging/setLevel"} {
				var params any
				if method == "logging/setLevel" {
					params = map[string]any{"level": "debug"}
				}
				r := c.call(method, params)
				if r.status != http.StatusOK || r.err != nil || string(r.result) != "{}" {
					t.Errorf("%s %s at %s: got HTTP %d %s, want 200 and {}", path, method, version, r.status, r.body)
				}
			}
		}
	}
}

// TestModernRequiredMeta: a 2026-07-28 request whose _meta lacks the
// client's capabilities, or holds them as anything but an object, is
// malformed: -32602 with HTTP 400 (Basic, "_meta", per-request protocol
// fields). A notification carries no capabilities and is accepted; a
// request for a method the gateway does not serve is 404 whatever its
// _meta.
func TestModernRequiredMeta(t *testing.T) {
	t.Parallel()
	g := statelessGateway(t)
	capsMember := []byte(`"` + mcp.MetaKeyClientCapabilities + `":{},`)
	for _, path := range statelessPaths {
		// A connector's own endpoint names its tools without the prefix.
		name := map[string]string{"/mcp": "a_echo", "/connectors/a/mcp": "echo"}[path]
		echo := map[string]any{"name": name, "arguments": map[string]any{"message": "hi"}}
		c := dialRaw(t, g.URL+path, agentHeader("alice", ""), v20260728)
		for _, tc := range []struct {
			method string
			params any
		}{
			{"tools/list", nil},
			{"tools/call", echo},
			{"server/discover", nil},
			{"subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}}},
		} {
			body, h := c.request(1, tc.method, tc.params)
			if !bytes.Contains(body, capsMember) {
				t.Fatalf("the request has no capabilities to leave out: %s", body)
			}
			without := bytes.Replace(body, capsMember, nil, 1)
			if r := c.post(without, h); r.status != http.StatusBadRequest || r.code() != -32602 || r.err.Message == "" {
				t.Errorf("%s %s without capabilities: got HTTP %d code %d, want 400 -32602: %s", path, tc.method, r.status, r.code(), r.body)
			}
			for _, bad := range []string{`null`, `"all"`, `[]`} {
				notObject := bytes.Replace(body, capsMember, []byte(`"`+mcp.MetaKeyClientCapabilities+`":`+bad+`,`), 1)
				if r := c.post(notObject, h); r.status != http.StatusBadRequest || r.code() != -32602 {
					t.Errorf("%s %s with capabilities %s: got HTTP %d code %d, want 400 -32602: %s", path, tc.method, bad, r.status, r.code(), r.body)
				}
			}
		}
		body, h := c.request(nil, "notifications/cancelled", map[string]any{"requestId": 7})
		if r := c.post(bytes.Replace(body, capsMember, nil, 1), h); r.status != http.StatusAccepted {
			t.Errorf("%s a notification without capabilities: got HTTP %d, want 202: %s", path, r.status, r.body)
		}
		body, h = c.request(1, "ping", nil)
		if r := c.post(bytes.Replace(body, capsMember, nil, 1), h); r.status != http.StatusNotFound || r.code() != -32601 {
			t.Errorf("%s removed ping without capabilities: got HTTP %d code %d, want 404 -32601: %s", path, r.status, r.code(), r.body)
		}
		// With them the same requests are served.
		c.result("tools/call", echo)
		c.result("server/discover", nil)
	}
}

// statelessGateway is a gateway with one connector, a, on an upstream
// of both eras, that alice may use.
func statelessGateway(t *testing.T) *gateway {
	t.Helper()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	rules := []grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"a/echo"}}}
	return startGateway(t, conns, rules)
}
