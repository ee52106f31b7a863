package mcpmux_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestUpstreamRedirectNotFollowed: an upstream that answers a tools/call
// with a redirect to another host does not get the gateway to send the
// call there, and with it the credential it injects; the agent is told
// the connector is unavailable.
func TestUpstreamRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	t.Cleanup(other.Close)
	up := testupstream.StartT(t, testupstream.Options{Name: "redir"})
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	// The upstream's own server, but for tools/call, which it sends on.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tools/call"`)) {
			http.Redirect(w, r, other.URL+"/mcp", http.StatusTemporaryRedirect)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	// Closed after the gateway (cleanups run last first), which holds a
	// notification stream open through it.
	t.Cleanup(front.Close)
	u, err := url.Parse(front.URL + target.Path)
	if err != nil {
		t.Fatal(err)
	}
	c := &connectors.Connector{ID: "redir", URL: u, Timeout: 2 * time.Second,
		Auth: connectors.Auth{Type: connectors.AuthBearer, Token: "upstream-secret"}}
	g := startGateway(t, []*connectors.Connector{c}, everyone)
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			agent := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			r := agent.call("tools/call", map[string]any{"name": "redir_echo", "arguments": map[string]any{"message": "hi"}})
			if r.result != nil || r.err == nil {
				t.Errorf("tools/call answered %d %s, want an error", r.status, r.body)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Errorf("the redirect's target got %d requests", n)
			}
		})
	}
}
