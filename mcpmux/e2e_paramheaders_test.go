package mcpmux_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// regionTool mirrors its region argument into the Mcp-Param-Region header
// (2026-07-28), which the upstream checks against the body.
func regionTool() mcp.Tool {
	return mcp.NewToolWithRawSchema("regional", "Says which region it ran in.", json.RawMessage(
		`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}},"required":["region"]}`))
}

// TestParamHeaders checks that the gateway mirrors x-mcp-header arguments
// into Mcp-Param-* headers towards a 2026-07-28 upstream, and checks the
// agent's own mirrored headers against the body.
func TestParamHeaders(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.ModernOnly, "a")
	ups["a"].MCP.AddTool(regionTool(), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ran in " + req.GetString("region", "?")), nil
	})
	g := startGateway(t, conns, everyone)

	// A real mcp-go client mirrors the argument itself, from tools/list.
	c := g.connect(t, "/mcp", "alice", "")
	toolNames(t, c)
	res, err := callTool(t, c, "a_regional", map[string]any{"region": "eu-west"})
	if err != nil {
		t.Fatalf("a_regional: %v", err)
	}
	if text := res.Content[0].(mcp.TextContent).Text; text != "ran in eu-west" {
		t.Fatalf("a_regional = %q", text)
	}
	var sent string
	for _, r := range ups["a"].Requests() {
		if v := r.Header.Get("Mcp-Param-Region"); v != "" {
			sent = v
		}
	}
	if sent != "eu-west" {
		t.Errorf("the upstream got Mcp-Param-Region %q", sent)
	}

	// An agent whose mirrored header disagrees with its body is refused,
	// and so is one that sends it empty or leaves it out.
	raw := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
	for _, region := range []string{"us-east", sentEmpty, ""} {
		body, h := raw.request(1, "tools/call", map[string]any{"name": "a_regional", "arguments": map[string]any{"region": "eu-west"}})
		h.Set("Mcp-Param-Region", region)
		if r := raw.post(body, h); r.code() != -32020 {
			t.Errorf("Mcp-Param-Region %q against the body's eu-west: %d %s", region, r.status, r.body)
		}
	}
	// An empty argument is mirrored as a header with an empty value: it
	// matches when that header is there, and not when it is missing.
	body, h := raw.request(2, "tools/call", map[string]any{"name": "a_regional", "arguments": map[string]any{"region": ""}})
	h.Set("Mcp-Param-Region", sentEmpty)
	if r := raw.post(body, h); r.result == nil {
		t.Errorf("an empty region with an empty header: %d %s", r.status, r.body)
	}
	h.Del("Mcp-Param-Region")
	if r := raw.post(body, h); r.code() != -32020 {
		t.Errorf("an empty region without its header: %d %s", r.status, r.body)
	}
}
