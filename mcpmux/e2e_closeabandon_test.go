package mcpmux_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestCloseEndsAbandonNotice: the notifications/cancelled the gateway
// sends a legacy upstream for a call it gave up on is the Mux's to wait
// for or end. Sent from a goroutine of its own, it outlived Close and put
// its connection back in the pool after Close had emptied it: the gateway
// kept a request to the upstream open after it closed, for as long as
// the upstream took (up to the notice's own 5 s bound), and an upstream
// server shut down after the gateway (httptest.Server.Close waits for
// every connection) waited for it.
func TestCloseEndsAbandonNotice(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "slow"})
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	noticed := make(chan struct{}, 1)
	// The upstream, but a tool call never answers and the upstream takes
	// its time with a cancellation notice.
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case bytes.Contains(body, []byte(`"tools/call"`)):
			<-r.Context().Done()
			return
		case bytes.Contains(body, []byte(`"notifications/cancelled"`)):
			noticed <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(4 * time.Second):
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	front.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s == http.StateClosed || s == http.StateHijacked {
			delete(open, c)
		} else {
			open[c] = true
		}
	}
	front.Start()
	t.Cleanup(front.Close)
	u, err := url.Parse(front.URL + target.Path)
	if err != nil {
		t.Fatal(err)
	}
	c := &connectors.Connector{ID: "slow", URL: u, Timeout: 300 * time.Millisecond}
	g := startGateway(t, []*connectors.Connector{c}, everyone)
	agent := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if r := agent.call("tools/call", map[string]any{"name": "slow_echo", "arguments": map[string]any{"message": "hi"}}); r.err == nil {
		t.Fatalf("tools/call answered %d %s, want the timeout", r.status, r.body)
	}
	select {
	case <-noticed:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream was not told of the call given up")
	}
	g.mux.Close()
	// The gateway's side of every connection is closed by now; the
	// server sees each end within moments.
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(open)
		mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the upstream open after the gateway closed", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
