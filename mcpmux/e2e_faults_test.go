package mcpmux_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestFaultyUpstreams checks that a dead and a slow upstream cost an agent
// no more than the connector timeout, leave the healthy connector's items
// in every list, and show as errors in the statuses.
func TestFaultyUpstreams(t *testing.T) {
	t.Parallel()
	// A loaded CI machine running -race stalls for hundreds of
	// milliseconds at times: the timeout is long enough that the bounds
	// below still tell one timeout from several.
	const timeout = time.Second
	const bound = 2 * timeout
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			t.Parallel()
			ups, conns := startUpstreams(t, testupstream.BothEras, "a", "dead", "slow")
			for _, c := range conns {
				c.Timeout = timeout
			}
			ups["dead"].Kill()
			ups["slow"].SetDelay(10 * time.Second)
			g := startGateway(t, conns, everyone)
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)

			// An agent starting up lists all four kinds; the connectors
			// that failed the first are not waited for again.
			first := time.Now()
			for _, l := range []struct{ method, field, key, want string }{
				{"tools/list", "tools", "name", "a_echo"},
				{"prompts/list", "prompts", "name", "a_greet"},
				{"resources/list", "resources", "uri", "test://a/readme"},
				{"resources/templates/list", "resourceTemplates", "uriTemplate", "test://a/items/{id}"},
			} {
				start := time.Now()
				names := listed(t, c.result(l.method, nil), l.field, l.key)
				if d := time.Since(start); d > bound {
					t.Errorf("%s took %v with a connector timeout of %v", l.method, d, timeout)
				}
				if !slices.Contains(names, l.want) {
					t.Errorf("%s lacks %s: %v", l.method, l.want, names)
				}
				for _, n := range names {
					if strings.HasPrefix(n, "dead_") || strings.HasPrefix(n, "slow_") || strings.Contains(n, "://dead/") || strings.Contains(n, "://slow/") {
						t.Errorf("%s lists %s", l.method, n)
					}
				}
				// shared://common is offered by a alone now, so it is bare.
				if l.method == "resources/list" && !slices.Contains(names, testupstream.SharedResourceURI) {
					t.Errorf("resources/list lacks the bare shared URI: %v", names)
				}
			}
			// One timeout, not one per list: four would take 4×timeout.
			// The slack above one timeout is for a loaded CI machine.
			if d := time.Since(first); d > 2*timeout {
				t.Errorf("the four lists took %v with a connector timeout of %v", d, timeout)
			}
			for _, name := range []string{"dead_echo", "slow_echo"} {
				start := time.Now()
				r := c.call("tools/call", map[string]any{"name": name, "arguments": map[string]any{"message": "x"}})
				if d := time.Since(start); d > bound {
					t.Errorf("%s took %v", name, d)
				}
				if r.err == nil || r.err.Code != -32603 || !strings.Contains(r.err.Message, "unavailable") {
					t.Errorf("%s: %s", name, r.body)
				}
			}
			if r := c.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "ok"}}); r.result == nil || textOf(t, r.result) != "ok" {
				t.Errorf("a_echo: %s", r.body)
			}

			start := time.Now()
			st := g.mux.Statuses(context.Background(), grants.Caller{ID: "alice"})
			if d := time.Since(start); d > bound {
				t.Errorf("Statuses took %v", d)
			}
			want := map[string]string{"a": mcpmux.StatusReady, "dead": mcpmux.StatusFailed, "slow": mcpmux.StatusFailed}
			if len(st) != len(want) {
				t.Fatalf("statuses = %+v", st)
			}
			for _, s := range st {
				if s.Status != want[s.ID] || (s.Status == mcpmux.StatusFailed) != (s.Reason != "") {
					t.Errorf("status of %s = %q, reason %q", s.ID, s.Status, s.Reason)
				}
				if strings.Contains(s.Reason, upstreamAuth) {
					t.Errorf("reason %q carries the credential", s.Reason)
				}
			}
		})
	}
}
