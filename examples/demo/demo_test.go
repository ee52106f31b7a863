package demo_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/examples/demo"
)

// dial connects an mcp-go client to url. A client pinned to 2025-11-25
// performs the initialize handshake; one with default options uses the
// stateless 2026-07-28 revision.
func dial(t *testing.T, url, version string) *client.Client {
	t.Helper()
	trans, err := transport.NewStreamableHTTP(url, transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.ClientOption
	if version == mcp.ProtocolVersion20251125 {
		opts = append(opts, client.WithProtocolVersion(version))
	}
	c := client.NewClient(trans, opts...)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "demo-test", Version: "1.0.0"}
	if _, err := c.Initialize(t.Context(), req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if got := c.ProtocolVersion(); got != version {
		t.Fatalf("negotiated %s, want %s", got, version)
	}
	return c
}

func TestDemo(t *testing.T) {
	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			srv := httptest.NewServer(demo.Handler())
			t.Cleanup(srv.Close)
			c := dial(t, srv.URL+"/mcp", version)

			checkTools(t, c)
			checkAdd(t, c)
			checkNotes(t, c)
			checkReadme(t, c)
			checkPrompt(t, c)
		})
	}
}

func call(ctx context.Context, c *client.Client, name string, args map[string]any) (string, *mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return "", nil, err
	}
	return res.Content[0].(mcp.TextContent).Text, res, nil
}

func checkTools(t *testing.T, c *client.Client) {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		readOnly := *tool.Annotations.ReadOnlyHint
		if readOnly == (tool.Name == "notes_append") {
			t.Errorf("%s: readOnlyHint %v", tool.Name, readOnly)
		}
	}
	slices.Sort(names)
	if want := []string{"add", "echo", "notes_append", "notes_list", "time_now"}; !slices.Equal(names, want) {
		t.Errorf("tools = %v, want %v", names, want)
	}
	if text, _, err := call(t.Context(), c, "echo", map[string]any{"message": "hi"}); err != nil || text != "hi" {
		t.Errorf("echo = %q, %v", text, err)
	}
	text, _, err := call(t.Context(), c, "time_now", nil)
	if now, perr := time.Parse(time.RFC3339, text); err != nil || perr != nil || time.Since(now) > time.Minute {
		t.Errorf("time_now = %q, %v", text, err)
	}
}

func checkAdd(t *testing.T, c *client.Client) {
	t.Helper()
	text, res, err := call(t.Context(), c, "add", map[string]any{"a": 2, "b": 3.5})
	if err != nil {
		t.Fatal(err)
	}
	if text != "2 + 3.5 = 5.5" {
		t.Errorf("add text = %q", text)
	}
	if got, _ := res.StructuredContent.(map[string]any); got["sum"] != 5.5 {
		t.Errorf("add structuredContent = %v", res.StructuredContent)
	}
}

func checkNotes(t *testing.T, c *client.Client) {
	t.Helper()
	for _, note := range []string{"first", "second"} {
		if _, _, err := call(t.Context(), c, "notes_append", map[string]any{"text": note}); err != nil {
			t.Fatal(err)
		}
	}
	if text, _, err := call(t.Context(), c, "notes_list", nil); err != nil || text != "first\nsecond" {
		t.Errorf("notes_list = %q, %v", text, err)
	}
}

func checkReadme(t *testing.T, c *client.Client) {
	t.Helper()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "demo://readme"
	res, err := c.ReadResource(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if text := res.Contents[0].(mcp.TextResourceContents).Text; !strings.HasPrefix(text, "# Demo MCP server") {
		t.Errorf("readme = %q", text)
	}
}

func checkPrompt(t *testing.T, c *client.Client) {
	t.Helper()
	req := mcp.GetPromptRequest{}
	req.Params.Name = "summarize"
	req.Params.Arguments = map[string]string{"text": "MCP connects agents to tools."}
	res, err := c.GetPrompt(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	msg := res.Messages[0]
	if text := msg.Content.(mcp.TextContent).Text; msg.Role != mcp.RoleUser || !strings.HasSuffix(text, "MCP connects agents to tools.") {
		t.Errorf("summarize = %s %q", msg.Role, text)
	}
}
