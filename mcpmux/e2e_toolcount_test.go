package mcpmux_test

import (
	"context"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestStatusesToolCount: each caller's status counts the tools their own
// grants let them use, the same ones the connector's endpoint lists to
// them; a connector that cannot answer has no count.
func TestStatusesToolCount(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{ExtraTools: 3})
	down := testupstream.StartT(t, testupstream.Options{})
	conns := []*connectors.Connector{
		testConnector(t, "up", up, connectors.Auth{}),
		testConnector(t, "down", down, connectors.Auth{}),
	}
	g := startGateway(t, conns, []grants.Rule{
		{Sources: []string{"user:alice"}, Connectors: []string{"up", "down"}, Tools: []string{"up/tool-*"}},
		{Sources: []string{"user:bob"}, Connectors: []string{"up"}},
	})
	down.Close()
	for user, want := range map[string]int{"alice": 3, "bob": len(toolNames(t, g.connect(t, "/connectors/up/mcp", "bob", "")))} {
		counts := map[string]*int{}
		for _, st := range g.mux.Statuses(context.Background(), grants.Caller{ID: user}) {
			counts[st.ID] = st.ToolCount
		}
		if counts["up"] == nil || *counts["up"] != want {
			t.Errorf("%s's tool count at up: %v, want %d", user, counts["up"], want)
		}
		if counts["down"] != nil {
			t.Errorf("%s's tool count at an upstream that is down: %d, want none", user, *counts["down"])
		}
	}
	if listed := len(toolNames(t, g.connect(t, "/connectors/up/mcp", "alice", ""))); listed != 3 {
		t.Errorf("alice's endpoint lists %d tools, her status counts 3", listed)
	}
}
