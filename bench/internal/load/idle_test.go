package load

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestHoldIdle: HoldIdle opens n legacy sessions with the handshake, each
// with its own session id and its own connection, which stay open without
// a request until Close ends every session with DELETE.
// TestHoldIdleDisconnected covers the sessions held without connections.
func TestHoldIdle(t *testing.T) {
	up, endpoint, conns := countedUpstream(t)

	const n = 20
	h, err := HoldIdle(t.Context(), Options{URL: endpoint, Method: MethodList, Era: EraModern}, n, true)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range h.sessions {
		ids[s.header.Get("Mcp-Session-Id")] = true
	}
	if len(ids) != n || ids[""] || h.Len() != n {
		t.Errorf("%d distinct session ids over %d sessions, want %d: %v", len(ids), h.Len(), n, ids)
	}
	if got := conns.Load(); got != n {
		t.Errorf("%d connections, want one per session, %d", got, n)
	}
	if got := countMethod(up, "initialize"); got != n {
		t.Errorf("the upstream saw %d initialize, want %d", got, n)
	}
	if got := countMethod(up, "tools/list"); got != 0 {
		t.Errorf("idle sessions sent %d tools/list", got)
	}
	h.Close()
	deletes := 0
	for _, r := range up.Requests() {
		if r.Method == http.MethodDelete {
			deletes++
		}
	}
	if deletes != n {
		t.Errorf("Close sent %d DELETE, want %d", deletes, n)
	}
}

// countMethod counts the JSON-RPC requests of method that up received.
func countMethod(up *testupstream.Server, method string) int {
	n := 0
	for _, r := range up.Requests() {
		var msg struct{ Method string }
		if json.Unmarshal(r.Body, &msg) == nil && msg.Method == method {
			n++
		}
	}
	return n
}

// TestHoldIdleDisconnected: without connected, each session's connection
// closes after its handshake, so that Connect's ping needs a new one for
// every session; the sessions stay the same. With CallerHeader, each
// session names a caller of its own in that header.
func TestHoldIdleDisconnected(t *testing.T) {
	up, endpoint, conns := countedUpstream(t)

	const n = 20
	h, err := HoldIdle(t.Context(), Options{URL: endpoint, CallerHeader: "X-Caller"}, n, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := conns.Load(); got != n {
		t.Fatalf("%d connections for the handshakes, want %d", got, n)
	}
	if err := h.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := conns.Load(); got != 2*n {
		t.Errorf("%d connections after Connect, want %d: the handshakes' connections were not closed", got, 2*n)
	}
	if got := countMethod(up, "ping"); got != n {
		t.Errorf("the upstream saw %d ping, want %d", got, n)
	}
	if got := countMethod(up, "initialize"); got != n {
		t.Errorf("the upstream saw %d initialize, want %d: Connect must keep the sessions", got, n)
	}
	callers := map[string]bool{}
	for _, r := range up.Requests() {
		callers[r.Header.Get("X-Caller")] = true
	}
	if len(callers) != n || callers[""] {
		t.Errorf("the sessions named %d callers, want %d: %v", len(callers), n, callers)
	}
}

// countedUpstream starts a test upstream behind a proxy that counts the
// connections made to it, and returns the upstream, the proxy's MCP
// endpoint and the count.
func countedUpstream(t *testing.T) (*testupstream.Server, string, *atomic.Int64) {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{})
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	conns := new(atomic.Int64)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: u.Host}))
	front.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	front.Start()
	t.Cleanup(front.Close)
	return up, front.URL + u.Path, conns
}
