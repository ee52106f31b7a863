package mcpmux_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestResourceRouting checks how resource reads find their connector: a
// URI two connectors offer must be named with its connector, a URI one
// offers and a template instance go to that one.
func TestResourceRouting(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	g := startGateway(t, conns, everyone)
	shared := testupstream.SharedResourceURI
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			uris := listed(t, c.result("resources/list", nil), "resources", "uri")
			want := []string{"test://a/readme", "test://a/logo.png", "mcpgate://a/" + shared, "test://b/readme", "test://b/logo.png", "mcpgate://b/" + shared}
			if !sameSet(uris, want) {
				t.Errorf("resources = %v, want %v", uris, want)
			}
			templates := listed(t, c.result("resources/templates/list", nil), "resourceTemplates", "uriTemplate")
			if !slices.Equal(templates, []string{"test://a/items/{id}", "test://b/items/{id}"}) {
				t.Errorf("templates = %v", templates)
			}

			r := c.call("resources/read", map[string]any{"uri": shared})
			if r.code() != -32602 || !strings.Contains(r.err.Message, "ambiguous") || !strings.Contains(r.err.Message, "mcpgate://") {
				t.Errorf("bare %s: %d %s", shared, r.status, r.body)
			}
			for uri, text := range map[string]string{
				"mcpgate://a/" + shared:        "common from a",
				"mcpgate://b/" + shared:        "common from b",
				"test://a/readme":              "readme of a",
				"test://b/readme":              "readme of b",
				"mcpgate://b/test://b/readme":  "readme of b",
				"test://b/items/7":             "item 7 of b",
				"test://a/items/7":             "item 7 of a",
				"mcpgate://b/test://b/items/8": "item 8 of b",
			} {
				if got := textOf(t, c.result("resources/read", map[string]any{"uri": uri})); got != text {
					t.Errorf("read %s = %q, want %q", uri, got, text)
				}
			}
			// A connector prefix does not reach another connector's items.
			for _, uri := range []string{"mcpgate://a/test://b/readme", "mcpgate://b/test://a/items/1", "mcpgate://zz/" + shared} {
				if r := c.call("resources/read", map[string]any{"uri": uri}); !notGranted(r) {
					t.Errorf("read %s: %s", uri, r.body)
				}
			}

			one := dialRaw(t, g.URL+"/connectors/b/mcp", agentHeader("alice", ""), era.version)
			if got := listed(t, one.result("resources/list", nil), "resources", "uri"); !slices.Contains(got, shared) {
				t.Errorf("scoped resources = %v", got)
			}
			if got := textOf(t, one.result("resources/read", map[string]any{"uri": shared})); got != "common from b" {
				t.Errorf("scoped read = %q", got)
			}
			if r := one.call("resources/read", map[string]any{"uri": "mcpgate://a/" + shared}); !notGranted(r) {
				t.Errorf("scoped read of another connector: %s", r.body)
			}
		})
	}
}

// TestCompletion checks completion/complete through the gateway, for a
// prompt argument by the prompt's wire name and for a template argument.
func TestCompletion(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	g := startGateway(t, conns, everyone)
	tests := []struct {
		path string
		ref  any
		arg  string
		val  string
		want []string
	}{
		{"/mcp", mcp.PromptReference{Type: "ref/prompt", Name: "a_greet"}, "who", "al", []string{"alice", "albert"}},
		{"/mcp", mcp.PromptReference{Type: "ref/prompt", Name: "b_greet"}, "who", "", []string{"alice", "albert", "bob", "carol"}},
		{"/mcp", mcp.ResourceReference{Type: "ref/resource", URI: "test://b/items/{id}"}, "id", "", []string{"1", "2", "3"}},
		{"/connectors/a/mcp", mcp.PromptReference{Type: "ref/prompt", Name: "greet"}, "who", "c", []string{"carol"}},
	}
	for _, era := range eras {
		t.Run(era.Name, func(t *testing.T) {
			for _, tt := range tests {
				c := g.connect(t, tt.path, "alice", "", era.Opts...)
				req := mcp.CompleteRequest{}
				req.Params.Ref = tt.ref
				req.Params.Argument = mcp.CompleteArgument{Name: tt.arg, Value: tt.val}
				res, err := c.Complete(ctxT(t), req)
				if err != nil {
					t.Fatalf("%s %+v: %v", tt.path, tt.ref, err)
				}
				if !slices.Equal(res.Completion.Values, tt.want) {
					t.Errorf("%s %+v = %v, want %v", tt.path, tt.ref, res.Completion.Values, tt.want)
				}
			}
		})
	}
}

// TestTemplateDoesNotOpenResources checks that a granted template whose
// pattern matches a listed resource the caller is not granted does not
// make that resource readable.
func TestTemplateDoesNotOpenResources(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	ups["a"].MCP.AddResourceTemplate(mcp.NewResourceTemplate("test://a/{name}", "anything"),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "via template"}}, nil
		})
	g := startGateway(t, conns, []grants.Rule{{Sources: []string{"*"}, Templates: []string{"a/**"}}})
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if r := c.call("resources/read", map[string]any{"uri": "test://a/readme"}); !notGranted(r) {
		t.Errorf("a listed, ungranted resource was read through a template: %s", r.body)
	}
	if got := textOf(t, c.result("resources/read", map[string]any{"uri": "test://a/other"})); got != "via template" {
		t.Errorf("an unlisted URI through the granted template = %q", got)
	}
}

// TestScopedEndpointStaysInScope checks that a connector's own endpoint
// cannot reach another connector through an mcpgate:// name, for reads and
// for completions alike.
func TestScopedEndpointStaysInScope(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	g := startGateway(t, conns, everyone)
	for _, era := range rawEras {
		c := dialRaw(t, g.URL+"/connectors/a/mcp", agentHeader("alice", ""), era.version)
		if r := c.call("resources/read", map[string]any{"uri": "mcpgate://b/test://b/readme"}); !notGranted(r) {
			t.Errorf("%s: /connectors/a/mcp read b's resource: %s", era.Name, r.body)
		}
		r := c.call("completion/complete", map[string]any{
			"ref":      map[string]any{"type": "ref/resource", "uri": "mcpgate://b/test://b/items/{id}"},
			"argument": map[string]any{"name": "id", "value": ""},
		})
		if !notGranted(r) {
			t.Errorf("%s: /connectors/a/mcp completed against b's template: %s", era.Name, r.body)
		}
		// Its own template, named either way, still completes.
		for _, uri := range []string{"test://a/items/{id}", "mcpgate://a/test://a/items/{id}"} {
			r := c.call("completion/complete", map[string]any{
				"ref": map[string]any{"type": "ref/resource", "uri": uri}, "argument": map[string]any{"name": "id", "value": ""},
			})
			if r.result == nil {
				t.Errorf("%s: completion for %s: %s", era.Name, uri, r.body)
			}
		}
	}
}
