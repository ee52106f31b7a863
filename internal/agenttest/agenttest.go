// Package agenttest connects real mcp-go clients to MCP endpoints, as agents
// do, for tests.
package agenttest

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Timeout bounds each step a test takes through a client.
const Timeout = 10 * time.Second

// Era is one way an agent can speak MCP.
type Era struct {
	// Name names the era in test names.
	Name string
	// Opts make a client speak it.
	Opts []client.ClientOption
}

// Eras are the two protocol eras: the legacy initialize handshake with a
// session, and the stateless 2026-07-28 protocol.
var Eras = []Era{
	{"legacy", []client.ClientOption{client.WithProtocolVersion(mcp.ProtocolVersion20251125)}},
	{"modern", nil},
}

// Dial connects a client to the MCP endpoint at url, sending headers with
// every request, and closes it when the test ends.
func Dial(t testing.TB, url string, headers map[string]string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(headers))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "agenttest", Version: "1"}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ToolNames lists the client's tools by name.
func ToolNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	names := make([]string, 0, len(res.Tools))
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// PromptNames lists the client's prompts by name.
func PromptNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	res, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatalf("prompts/list: %v", err)
	}
	names := make([]string, 0, len(res.Prompts))
	for _, p := range res.Prompts {
		names = append(names, p.Name)
	}
	return names
}

// Call calls a tool.
func Call(c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	return c.CallTool(ctx, req)
}
