package mcpmux_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// upstreamEras are the upstream eras the stream tests run against. Every
// agent reaches a legacy-only upstream through the one session they share,
// and a 2026-07-28-only one statelessly; an upstream of both eras is
// reached in each agent's own era.
var upstreamEras = []testupstream.Era{testupstream.LegacyOnly, testupstream.ModernOnly, testupstream.BothEras}

// streamGateway serves one upstream of era, connector "a", to everyone.
func streamGateway(t *testing.T, era testupstream.Era) (*testupstream.Server, *gateway) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a", Era: era, BearerToken: upstreamAuth})
	return up, startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone)
}

// legacySession reports whether an agent of the named era reaches an
// upstream of upEra through the legacy session all agents share, whose
// notifications may come on any of its streams.
func legacySession(upEra testupstream.Era, agentEra string) bool {
	return upEra == testupstream.LegacyOnly || upEra == testupstream.BothEras && agentEra == "legacy"
}

// TestProgress checks that an upstream's progress notifications reach an
// agent that accepts an event stream, ahead of the result and in the
// upstream's order, in every combination of eras. The mcp-go client calls
// its notification handler on the goroutine that reads the stream, so the
// order it sees is the order on the wire.
func TestProgress(t *testing.T) {
	t.Parallel()
	for _, upEra := range upstreamEras {
		up, g := streamGateway(t, upEra)
		for _, era := range eras {
			t.Run(upEra.String()+"/"+era.Name, func(t *testing.T) {
				c := g.connect(t, "/mcp", "alice", "", era.Opts...)
				var mu sync.Mutex
				var progress []mcp.JSONRPCNotification
				c.OnNotification(func(n mcp.JSONRPCNotification) {
					if n.Method == string(mcp.MethodNotificationProgress) {
						mu.Lock()
						progress = append(progress, n)
						mu.Unlock()
					}
				})
				before := len(up.ProgressWrites())
				req := mcp.CallToolRequest{}
				req.Params.Name = "a_progress"
				req.Params.Arguments = map[string]any{"steps": 3}
				req.Params.Meta = &mcp.Meta{ProgressToken: "tok-" + era.Name}
				res, err := c.CallTool(ctxT(t), req)
				if err != nil {
					t.Fatal(err)
				}
				if text := res.Content[0].(mcp.TextContent).Text; text != "progressed" {
					t.Fatalf("result = %q", text)
				}
				written := up.ProgressWrites()[before:]
				mu.Lock()
				defer mu.Unlock()
				var got []float64
				for i, n := range progress {
					f := n.Params.AdditionalFields
					p, _ := f["progress"].(float64)
					if f["progressToken"] != "tok-"+era.Name || f["total"] != float64(3) {
						t.Errorf("notification %d = %v", i, f)
					}
					got = append(got, p)
				}
				checkProgress(t, got, written, legacySession(upEra, era.Name))
			})
		}
	}
}

// checkProgress checks what an agent got of one call's progress against
// what the upstream wrote. The agent gets the upstream's values in the
// upstream's order. Stateless, every one comes on the call's own stream
// and reaches the agent ahead of the result. A legacy upstream session
// (split) hands each notification to whichever of its streams reads first,
// the gateway's GET stream included, and nothing orders two streams but
// the values: the gateway relays every one that arrives while the call is
// open, except one lower than a value it already relayed (sent late, it
// would go backwards). So there, every value written on a POST stream
// reached the agent unless the agent already had a higher one, and one
// written on the GET stream may arrive after the call has ended.
func checkProgress(t *testing.T, got []float64, written []testupstream.ProgressWrite, split bool) {
	t.Helper()
	if !split {
		if !slices.Equal(got, []float64{1, 2, 3}) {
			t.Fatalf("got progress %v, want [1 2 3] (the upstream wrote %v)", got, written)
		}
		return
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("progress went %v: not in the upstream's order (it wrote %v)", got, written)
		}
	}
	for _, w := range written {
		if w.Stream != http.MethodPost || slices.Contains(got, w.Progress) {
			continue
		}
		if len(got) == 0 || got[len(got)-1] < w.Progress {
			t.Errorf("progress %v came on the call's stream but never reached the agent, which got %v (the upstream wrote %v)", w.Progress, got, written)
		}
	}
}

// TestCancel checks that an agent giving up on a call stops the
// upstream's work, whether it closes the request or, in a legacy session,
// sends notifications/cancelled.
func TestCancel(t *testing.T) {
	t.Parallel()
	for _, upEra := range upstreamEras {
		up, g := streamGateway(t, upEra)
		for _, era := range eras {
			t.Run(upEra.String()+"/"+era.Name, func(t *testing.T) {
				c := g.connect(t, "/mcp", "alice", "", era.Opts...)
				toolNames(t, c)
				before := up.Cancelled()
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				req := mcp.CallToolRequest{}
				req.Params.Name = "a_slow"
				req.Params.Arguments = map[string]any{"ms": 5000}
				start := time.Now()
				if _, err := c.CallTool(ctx, req); err == nil {
					t.Fatal("the call outlived its context")
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("the cancelled call took %v", d)
				}
				eventually(t, 2*time.Second, "the upstream to see the cancellation", func() bool {
					return up.Cancelled() > before
				})
			})
		}
		t.Run(upEra.String()+"/another session", func(t *testing.T) {
			// notifications/cancelled reaches only the sender's own
			// requests: bob cannot cancel alice's call by naming its id.
			alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
			bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
			before, calls := up.Cancelled(), len(callsOf(up, "slow"))
			done := make(chan *rawReply, 1)
			body, h := alice.request("slow-2", "tools/call", map[string]any{"name": "a_slow", "arguments": map[string]any{"ms": 400}})
			go func() { done <- alice.post(body, h) }()
			eventually(t, 2*time.Second, "the call to reach the upstream", func() bool {
				return len(callsOf(up, "slow")) > calls
			})
			bob.notify("notifications/cancelled", map[string]any{"requestId": "slow-2"})
			if r := <-done; r.result == nil || textOf(t, r.result) != "done" {
				t.Errorf("alice's call: %s", r.body)
			}
			if up.Cancelled() != before {
				t.Error("another session cancelled alice's call")
			}
		})
		t.Run(upEra.String()+"/notification", func(t *testing.T) {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
			c.result("tools/list", nil)
			before, calls := up.Cancelled(), len(callsOf(up, "slow"))
			done := make(chan *rawReply, 1)
			body, h := c.request("slow-1", "tools/call", map[string]any{"name": "a_slow", "arguments": map[string]any{"ms": 5000}})
			go func() { done <- c.post(body, h) }()
			// Wait until the call has reached the upstream.
			eventually(t, 2*time.Second, "the call to reach the upstream", func() bool {
				return len(callsOf(up, "slow")) > calls
			})
			time.Sleep(50 * time.Millisecond)
			if r := c.notify("notifications/cancelled", map[string]any{"requestId": "slow-1", "reason": "test"}); r.status != 202 {
				t.Fatalf("notifications/cancelled: %d %s", r.status, r.body)
			}
			eventually(t, 2*time.Second, "the upstream to see the cancellation", func() bool {
				return up.Cancelled() > before
			})
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("the cancelled call did not end")
			}
		})
	}
}

// callsOf returns the tools/call bodies an upstream received for tool.
func callsOf(up *testupstream.Server, tool string) [][]byte {
	var out [][]byte
	for _, r := range up.Requests() {
		if bytesContainsAll(r.Body, `"method":"tools/call"`, `"name":"`+tool+`"`) {
			out = append(out, r.Body)
		}
	}
	return out
}

// TestProgressRouting checks that progress notifications reach only the
// agent whose request asked for them, with its own token, when several
// agents share one upstream session and all pick the same token.
func TestProgressRouting(t *testing.T) {
	t.Parallel()
	for _, upEra := range upstreamEras {
		t.Run(upEra.String(), func(t *testing.T) {
			_, g := streamGateway(t, upEra)
			var wg sync.WaitGroup
			for i := range 4 {
				c := dialRaw(t, g.URL+"/mcp", agentHeader(fmt.Sprintf("user%d", i), ""), rawEras[i%2].version)
				c.result("tools/list", nil)
				steps := 4 + i // each agent's notifications say "of <steps>"
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := c.call("tools/call", map[string]any{"name": "a_progress", "arguments": map[string]any{"steps": steps},
						"_meta": map[string]any{"progressToken": 7}})
					if r.result == nil {
						t.Errorf("agent %d: %s", i, r.body)
						return
					}
					var last float64
					for _, n := range r.notes {
						var note struct {
							Params struct {
								ProgressToken   json.RawMessage `json:"progressToken"`
								Progress, Total float64
							} `json:"params"`
						}
						decodeInto(t, n, &note)
						p := note.Params
						if string(p.ProgressToken) != "7" || p.Total != float64(steps) || p.Progress <= last {
							t.Errorf("agent %d (of %d) got %s after progress %v", i, steps, n, last)
						}
						last = p.Progress
					}
					// A legacy mcp-go upstream drops a notification that a
					// finished request's stream picked up, and the gateway
					// one that arrives after a later one, so only a
					// stateless one must deliver every one.
					if len(r.notes) > steps || !legacySession(upEra, rawEras[i%2].Name) && len(r.notes) != steps {
						t.Errorf("agent %d got %d progress notifications of %d", i, len(r.notes), steps)
					}
				}()
			}
			wg.Wait()
		})
	}
}
