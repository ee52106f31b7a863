package mcpmux_test

import (
	"context"
	"slices"
	"sync/atomic"
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

// TestListChanged checks that a tool an upstream adds at runtime reaches
// listening agents as notifications/tools/list_changed without their
// asking, and then is subject to the grants like any other tool.
func TestListChanged(t *testing.T) {
	t.Parallel()
	for _, upEra := range []testupstream.Era{testupstream.LegacyOnly, testupstream.ModernOnly} {
		for _, era := range []string{"legacy", "modern"} {
			t.Run(upEra.String()+"/"+era, func(t *testing.T) {
				up := testupstream.StartT(t, testupstream.Options{Name: "a", Era: upEra, BearerToken: upstreamAuth})
				g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, []grants.Rule{
					{Sources: []string{"user:alice"}, Tools: []string{"a/**"}},
					{Sources: []string{"user:bob"}, Tools: []string{"a/echo"}},
				})
				var changed atomic.Int32
				c := listeningAgent(t, g, "alice", era == "modern", func(n mcp.JSONRPCNotification) {
					if n.Method == string(mcp.MethodNotificationToolsListChanged) {
						changed.Add(1)
					}
				})
				if slices.Contains(toolNames(t, c), "a_added") {
					t.Fatal("a_added is listed before it exists")
				}
				time.Sleep(200 * time.Millisecond) // let the stream open
				up.AddTool("added")
				eventually(t, 3*time.Second, "notifications/tools/list_changed at the agent", func() bool {
					return changed.Load() > 0
				})
				if !slices.Contains(toolNames(t, c), "a_added") {
					t.Error("a_added is not listed after list_changed")
				}
				if _, err := callTool(t, c, "a_added", nil); err != nil {
					t.Errorf("a_added: %v", err)
				}
				// One change, one notice: the fetch that the notice prompted
				// finds the list different, and says nothing more.
				time.Sleep(200 * time.Millisecond)
				if n := changed.Load(); n != 1 {
					t.Errorf("the agent was told of one change %d times", n)
				}
				bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
				if slices.Contains(listed(t, bob.result("tools/list", nil), "tools", "name"), "a_added") {
					t.Error("bob, granted a/echo only, lists a_added")
				}
				if r := bob.call("tools/call", map[string]any{"name": "a_added"}); !notGranted(r) {
					t.Errorf("bob calls a_added: %s", r.body)
				}
			})
		}
	}
}

// TestListChangedOnRefetch checks that when the gateway fetches a list
// again and finds it changed, listening agents hear of it.
func TestListChangedOnRefetch(t *testing.T) {
	t.Parallel()
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
			clock := &fakeClock{}
			g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone,
				clock.option(), func(o *mcpmux.Options) { o.ListTTL = time.Minute })
			var changed atomic.Int32
			c := listeningAgent(t, g, "alice", era == "modern", func(n mcp.JSONRPCNotification) {
				if n.Method == string(mcp.MethodNotificationToolsListChanged) {
					changed.Add(1)
				}
			})
			toolNames(t, c)
			time.Sleep(200 * time.Millisecond) // let the stream open
			up.AddTool("added")
			clock.advance(2 * time.Minute)
			other := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
			if !slices.Contains(listed(t, other.result("tools/list", nil), "tools", "name"), "a_added") {
				t.Fatal("the refetched list lacks a_added")
			}
			eventually(t, 3*time.Second, "notifications/tools/list_changed at the agent", func() bool {
				return changed.Load() > 0
			})
			if !slices.Contains(toolNames(t, c), "a_added") {
				t.Error("a_added is not listed after list_changed")
			}
		})
	}
}

// listeningAgent connects an agent that keeps a notification stream open:
// the legacy GET stream, or subscriptions/listen on 2026-07-28. It returns
// once the gateway holds the stream (agenttest.ListenFunc).
func listeningAgent(t *testing.T, g *gateway, user string, modern bool, onNote func(mcp.JSONRPCNotification)) *client.Client {
	t.Helper()
	era := agenttest.Eras[0]
	if modern {
		era = agenttest.Eras[1]
	}
	return agenttest.ListenFunc(t, g.URL+"/mcp", map[string]string{"X-Test-User": user, "Authorization": "Bearer " + agentSecret}, era, onNote)
}

// TestListeningAgentHearsAtOnce checks that a listening agent hears a
// notice the gateway sends as soon as it is connected, in both eras: the
// tests that count notices rely on the stream being held by then, rather
// than on a wait for it to open, which a loaded machine may outlast.
func TestListeningAgentHearsAtOnce(t *testing.T) {
	t.Parallel()
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			_, conns := startUpstreams(t, testupstream.BothEras, "a")
			g := startGateway(t, conns, everyone)
			n := new(agenttest.Notes)
			listeningAgent(t, g, "alice", era == "modern", n.On)
			g.mux.Reloaded()
			eventually(t, 3*time.Second, "the agent told of the reload", func() bool { return n.Tools() > 0 })
		})
	}
}

// TestListChangedOnlyWhereSeen checks that an upstream's list_changed
// reaches exactly the listening agents whose view it changes: not one
// whose grants hide the changed tool, nor one that cannot see the
// connector. A prompt added afterwards, which all may see, is the
// barrier: on each agent's stream it comes after any tools notice that
// was sent, so counting then is exact.
func TestListChangedOnlyWhereSeen(t *testing.T) {
	t.Parallel()
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			ups, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
			g := startGateway(t, conns, []grants.Rule{
				{Sources: []string{"user:alice"}, Tools: []string{"a/**"}, Prompts: []string{"a/**"}},
				{Sources: []string{"user:bob"}, Tools: []string{"a/echo"}, Prompts: []string{"a/**"}},
				{Sources: []string{"user:carol"}, Tools: []string{"b/**"}, Prompts: []string{"b/**"}},
			})
			type counts struct{ tools, prompts atomic.Int32 }
			agents := map[string]*counts{"alice": {}, "bob": {}, "carol": {}}
			for user, n := range agents {
				c := listeningAgent(t, g, user, era == "modern", func(note mcp.JSONRPCNotification) {
					switch note.Method {
					case string(mcp.MethodNotificationToolsListChanged):
						n.tools.Add(1)
					case string(mcp.MethodNotificationPromptsListChanged):
						n.prompts.Add(1)
					}
				})
				toolNames(t, c) // the gateway has lists to compare with
				if _, err := c.ListPrompts(ctxT(t), mcp.ListPromptsRequest{}); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(200 * time.Millisecond) // let the streams open
			ups["a"].AddTool("added")
			eventually(t, 3*time.Second, "alice told of a/added", func() bool { return agents["alice"].tools.Load() > 0 })
			ups["a"].MCP.AddPrompt(mcp.NewPrompt("barrier"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				return &mcp.GetPromptResult{}, nil
			})
			eventually(t, 3*time.Second, "bob told of a/barrier", func() bool { return agents["bob"].prompts.Load() > 0 })
			ups["b"].MCP.AddPrompt(mcp.NewPrompt("barrier"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				return &mcp.GetPromptResult{}, nil
			})
			eventually(t, 3*time.Second, "carol told of b/barrier", func() bool { return agents["carol"].prompts.Load() > 0 })
			if n := agents["alice"].tools.Load(); n != 1 {
				t.Errorf("alice, granted a/**, was told of a/added %d times, want 1", n)
			}
			if n := agents["bob"].tools.Load(); n != 0 {
				t.Errorf("bob, granted a/echo only, was told of a/added %d times", n)
			}
			if n := agents["carol"].tools.Load(); n != 0 {
				t.Errorf("carol, who cannot see connector a, was told of a/added %d times", n)
			}
			if n := agents["carol"].prompts.Load(); n != 1 {
				t.Errorf("carol was told of prompt changes %d times, want 1 (b/barrier only)", n)
			}
		})
	}
}
