package mcpmux_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/conformance"
)

// startFixture serves the conformance fixture of era on 127.0.0.1 and
// returns it as connector id.
func startFixture(t *testing.T, id string, era conformance.Era) *connectors.Connector {
	t.Helper()
	f := conformance.NewFixture(era)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close)
	u, _ := url.Parse(srv.URL + "/mcp")
	return &connectors.Connector{ID: id, URL: u, Timeout: 10 * time.Second}
}

// answering is a legacy agent's handlers for the upstream's questions.
type answering struct{}

func (answering) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"username": "ada", "email": "ada@example.com", "name": "Ada"}}}, nil
}

func (answering) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.TextContent{Type: "text", Text: "sampled by the agent"}}, Model: "agent-model"}, nil
}

// TestRelayLegacy checks that a legacy upstream's questions during a call
// reach the legacy agent that made it, and its answers the upstream.
func TestRelayLegacy(t *testing.T) {
	g := startGateway(t, []*connectors.Connector{startFixture(t, "f", conformance.LegacyOnly)}, everyone)
	c := agenttest.Dial(t, g.URL+"/connectors/f/mcp", map[string]string{"X-Test-User": "alice"},
		client.WithElicitationHandler(answering{}), client.WithSamplingHandler(answering{}),
		client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	for _, tc := range []struct{ tool, want string }{
		{"test_elicitation", "ada"},
		{"test_sampling", "sampled by the agent"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"message": "hi", "prompt": "hi"}}})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.tool, err)
		}
		if text := mcp.GetTextFromContent(res.Content[0]); res.IsError || !strings.Contains(text, tc.want) {
			t.Errorf("%s: %v", tc.tool, res.Content)
		}
	}
	_ = http.StatusOK
}
