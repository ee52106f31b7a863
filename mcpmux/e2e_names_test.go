package mcpmux_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// catalogTools are the test upstream's tools.
var catalogTools = []string{"echo", "rich", "extension", "fail", "slow", "progress", "delete_everything", testupstream.LongToolName, "whoami"}

// TestNames checks how the aggregated endpoint names tools and prompts for
// each separator, and that the connector's own endpoint does not prefix.
func TestNames(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "alpha")
	_ = ups
	for _, sep := range []string{"_", "__"} {
		t.Run("sep"+sep, func(t *testing.T) {
			g := startGateway(t, conns, everyone, func(o *mcpmux.Options) { o.Separator = sep })
			for _, era := range rawEras {
				t.Run(era.Name, func(t *testing.T) {
					agg := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
					tools := listed(t, agg.result("tools/list", nil), "tools", "name")
					for _, name := range catalogTools {
						if name == testupstream.LongToolName {
							continue
						}
						if !slices.Contains(tools, "alpha"+sep+name) {
							t.Errorf("tools/list lacks %q: %v", "alpha"+sep+name, tools)
						}
					}
					for _, name := range tools {
						if name != "mcpgate_list_connectors" && !strings.HasPrefix(name, "alpha"+sep) {
							t.Errorf("tool %q is not prefixed with alpha%s", name, sep)
						}
					}
					r := agg.call("tools/call", map[string]any{"name": "alpha" + sep + "echo", "arguments": map[string]any{"message": "hi"}})
					if r.result == nil || textOf(t, r.result) != "hi" {
						t.Fatalf("call alpha%secho: %s", sep, r.body)
					}
					// The other separator is not a name the gateway hands out.
					other := map[string]string{"_": "__", "__": "_"}[sep]
					if r := agg.call("tools/call", map[string]any{"name": "alpha" + other + "echo", "arguments": map[string]any{"message": "hi"}}); !notGranted(r) {
						t.Errorf("call alpha%secho with separator %q: %s", other, sep, r.body)
					}

					prompts := listed(t, agg.result("prompts/list", nil), "prompts", "name")
					if want := []string{"alpha" + sep + "greet", "alpha" + sep + "plain"}; !slices.Equal(prompts, want) {
						t.Errorf("prompts = %v, want %v", prompts, want)
					}
					res := agg.result("prompts/get", map[string]any{"name": "alpha" + sep + "greet", "arguments": map[string]any{"who": "bob"}})
					if got := textOf(t, res); got != "Hello, bob, from alpha" {
						t.Errorf("prompts/get = %q", got)
					}

					one := dialRaw(t, g.URL+"/connectors/alpha/mcp", agentHeader("alice", ""), era.version)
					got := listed(t, one.result("tools/list", nil), "tools", "name")
					if want := slices.Sorted(slices.Values(catalogTools)); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
						t.Errorf("scoped tools = %v, want %v", got, want)
					}
					if got := listed(t, one.result("prompts/list", nil), "prompts", "name"); !slices.Equal(got, []string{"greet", "plain"}) {
						t.Errorf("scoped prompts = %v", got)
					}
					r = one.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"message": "one"}})
					if r.result == nil || textOf(t, r.result) != "one" {
						t.Fatalf("scoped echo: %s", r.body)
					}
					if r := one.call("tools/call", map[string]any{"name": "alpha" + sep + "echo", "arguments": map[string]any{"message": "x"}}); !notGranted(r) {
						t.Errorf("scoped call of a prefixed name: %s", r.body)
					}
				})
			}
		})
	}
}

// TestLongName checks that a prefixed name longer than 64 bytes gets a
// short form that is the same on two gateways and can be called.
func TestLongName(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "alpha")
	var short []string
	for range 2 {
		g := startGateway(t, conns, everyone)
		agg := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
		var long []string
		for _, name := range listed(t, agg.result("tools/list", nil), "tools", "name") {
			if len(name) > 64 {
				t.Errorf("tool name %q is %d bytes", name, len(name))
			}
			if !slices.Contains(catalogTools, strings.TrimPrefix(name, "alpha_")) && name != "mcpgate_list_connectors" {
				long = append(long, name)
			}
		}
		if len(long) != 1 {
			t.Fatalf("want one shortened name, got %v", long)
		}
		if !strings.HasPrefix(long[0], "alpha_a_tool_with") {
			t.Errorf("short form %q does not keep the start of the name", long[0])
		}
		r := agg.call("tools/call", map[string]any{"name": long[0]})
		if r.result == nil || textOf(t, r.result) != "long" {
			t.Fatalf("call %s: %s", long[0], r.body)
		}
		// The full name is not a wire name.
		if r := agg.call("tools/call", map[string]any{"name": "alpha_" + testupstream.LongToolName}); !notGranted(r) {
			t.Errorf("call of the unshortened name: %s", r.body)
		}
		short = append(short, long[0])
	}
	if short[0] != short[1] {
		t.Errorf("two gateways shorten differently: %q and %q", short[0], short[1])
	}
}
