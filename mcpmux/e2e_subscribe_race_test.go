package mcpmux_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestSubscribeWhileListenerStarts checks that a legacy upstream is asked
// once for a resource whose resources/subscribe is on its way when the
// connection's notification stream opens, as it does when a loaded machine
// runs the stream's goroutine late: the stream asks again only for what
// the upstream session lacks, and a subscription under way is not lacking.
// Updates then reach the agent.
func TestSubscribeWhileListenerStarts(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.LegacyOnly, "a")
	up := ups["a"]
	g := startGateway(t, conns, everyone)
	start := mcpmux.HoldListener(g.mux, conns[0])
	const uri = "test://a/readme"
	// The stream starts once the agent's subscription has reached the
	// upstream, which answers it once the stream has asked for it too, or
	// has had the time to.
	var held atomic.Bool
	up.SetGuard(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && countMethod(up, "resources/subscribe") > 0 && held.CompareAndSwap(false, true) {
				start()
				for end := time.Now().Add(500 * time.Millisecond); countMethod(up, "resources/subscribe") < 2 && time.Now().Before(end); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	stream := openStream(t, c, nil)
	c.result("resources/subscribe", map[string]any{"uri": uri})
	wait.Until(t, 5*time.Second, "the upstream notification stream", func() bool {
		for _, r := range up.Requests() {
			if r.Method == http.MethodGet {
				return true
			}
		}
		return false
	})
	if n := countMethod(up, "resources/subscribe"); n != 1 {
		t.Errorf("one subscription sent %d resources/subscribe upstream, want 1", n)
	}
	up.UpdateResource(uri)
	if got := nextUpdate(t, stream, 3*time.Second); got != uri {
		t.Errorf("update = %q, want %q", got, uri)
	}
}
