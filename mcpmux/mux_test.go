package mcpmux_test

import (
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

func TestEras(t *testing.T) {
	upstreams := []testupstream.Era{testupstream.LegacyOnly, testupstream.ModernOnly, testupstream.BothEras}
	for _, upEra := range upstreams {
		for _, agent := range eras {
			t.Run(upEra.String()+"/"+agent.Name, func(t *testing.T) {
				up := testupstream.StartT(t, testupstream.Options{Name: "a", Era: upEra, BearerToken: "up-token"})
				g := startGateway(t,
					[]*connectors.Connector{testConnector(t, "alpha", up, connectors.Auth{Type: connectors.AuthBearer, Token: "up-token"})},
					[]grants.Rule{{Sources: []string{"*"}, Connectors: []string{"alpha"}}})
				c := g.connect(t, "/mcp", "alice", "", agent.Opts...)
				if modern := c.ProtocolVersion() >= "2026-07-28"; modern != (agent.Name == "modern") {
					t.Fatalf("agent negotiated %s", c.ProtocolVersion())
				}
				names := toolNames(t, c)
				if !slices.Contains(names, "alpha_echo") || !slices.Contains(names, "mcpgate_list_connectors") {
					t.Fatalf("tools = %v", names)
				}
				res, err := callTool(t, c, "alpha_echo", map[string]any{"message": "hi"})
				if err != nil {
					t.Fatal(err)
				}
				if text, ok := res.Content[0].(mcp.TextContent); !ok || text.Text != "hi" {
					t.Fatalf("result = %+v", res)
				}
				one := g.connect(t, "/connectors/alpha/mcp", "alice", "", agent.Opts...)
				if names := toolNames(t, one); !slices.Contains(names, "echo") {
					t.Fatalf("scoped tools = %v", names)
				}
			})
		}
	}
}
