package mcpmux_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// addEchoTemplate makes an upstream offer tmpl, reading any URI as
// "read <uri>".
func addEchoTemplate(up *testupstream.Server, tmpl string) {
	up.MCP.AddResourceTemplate(mcp.NewResourceTemplate(tmpl, "echo"),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "read " + req.Params.URI}}, nil
		})
}

// TestTemplateReadTraversal checks that a URI read through a granted
// template passes the same traversal guard as one read under a resource
// grant: "templates a/file:///data/*" reads file:///data/ok but none of
// the names that step out of /data once the upstream resolves them.
func TestTemplateReadTraversal(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	addEchoTemplate(ups["a"], "file:///data/{name}")
	for _, pattern := range []string{"a/file:///data/*", "a/file:///data/{name}"} {
		g := startGateway(t, conns, []grants.Rule{{Sources: []string{"*"}, Templates: []string{pattern}}})
		for _, era := range rawEras {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			for _, uri := range []string{"file:///data/..", "file:///data/..%2f..%2fsecret", "file:///data/..;", "file:///data/%2e%2e;", "file:///data/.;x"} {
				if r := c.call("resources/read", map[string]any{"uri": uri}); !notGranted(r) {
					t.Errorf("%s, %s: read %s: %s", pattern, era.Name, uri, r.body)
				}
			}
			if got := textOf(t, c.result("resources/read", map[string]any{"uri": "file:///data/ok"})); got != "read file:///data/ok" {
				t.Errorf("%s, %s: read file:///data/ok = %q", pattern, era.Name, got)
			}
		}
	}
}

// TestTemplateReadLimits checks the bounds on template matching through
// the gateway: a URI over 16 KiB is refused as invalid params naming the
// limit, before any template is tried, and a URI at the limit that took
// the old matcher minutes against a two-expression template is read at
// once.
func TestTemplateReadLimits(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	addEchoTemplate(ups["a"], "file:///r/{+dir}/{+file}.txt")
	g := startGateway(t, conns, everyone)
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)

	for _, uri := range []string{
		"file:///r/" + strings.Repeat("/", 80000),
		"mcpgate://a/file:///r/" + strings.Repeat("/", 80000) + ".txt",
		strings.Repeat("x", 16<<10+1),
	} {
		r := c.call("resources/read", map[string]any{"uri": uri})
		if r.code() != -32602 || !strings.Contains(r.err.Message, "longer than 16384 bytes") {
			t.Errorf("a %d-byte URI: %d %.200s", len(uri), r.status, r.body)
		}
	}

	// 80,000 slashes took 18 s of CPU; the slashes that fit in 16 KiB
	// took about 4 s. Now the read answers at once, and the upstream
	// serves it.
	uri := "file:///r/" + strings.Repeat("/", 16<<10-len("file:///r/.txt")) + ".txt"
	start := time.Now()
	if got := textOf(t, c.result("resources/read", map[string]any{"uri": uri})); got != "read "+uri {
		t.Errorf("a %d-byte URI through the template = %.100q", len(uri), got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a %d-byte URI took %v", len(uri), d)
	}
}
