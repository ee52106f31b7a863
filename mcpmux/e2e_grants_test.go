package mcpmux_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// splitRules give two groups different slices of connectors a and b, and
// one admin everything.
var splitRules = []grants.Rule{
	{
		Sources:   []string{"group:eng"},
		Tools:     []string{"a/echo", "a/rich"},
		Resources: []string{"a/test://a/readme", "a/shared://common"},
		Templates: []string{"a/test://a/items/{id}"},
		Prompts:   []string{"a/greet"},
	},
	{
		Sources:   []string{"group:ops"},
		Tools:     []string{"b/**"},
		Resources: []string{"b/test://b/logo.png", "b/shared://common"},
		Prompts:   []string{"b/plain", "a/plain"},
	},
	{Sources: []string{"user:root"}, Connectors: []string{"*"}},
}

// callArgs are arguments that make each catalog tool succeed at once.
var callArgs = map[string]map[string]any{
	"echo":     {"message": "x"},
	"slow":     {"ms": 0},
	"progress": {"steps": 0},
}

// catalogURIs are the resources each connector of startUpstreams serves.
func catalogURIs(c string) []string {
	return []string{"test://" + c + "/readme", "test://" + c + "/logo.png", testupstream.SharedResourceURI}
}

// TestGrantParity checks, for two users in different groups and for every
// item of the catalog, that an item is in the caller's list exactly when
// the caller may use it, and that a refusal says the item is not granted.
func TestGrantParity(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	g := startGateway(t, conns, splitRules)
	root := dialRaw(t, g.URL+"/mcp", agentHeader("root", ""), v20251125)
	allTools := listed(t, root.result("tools/list", nil), "tools", "name")
	allPrompts := listed(t, root.result("prompts/list", nil), "prompts", "name")
	allTemplates := listed(t, root.result("resources/templates/list", nil), "resourceTemplates", "uriTemplate")
	if len(allTools) != 2*len(catalogTools)+1 || len(allPrompts) != 4 || len(allTemplates) != 2 {
		t.Fatalf("root's catalog: %d tools, %d prompts, %d templates", len(allTools), len(allPrompts), len(allTemplates))
	}

	users := []struct {
		user, groups string
		tools        []string // granted wire names
		resources    []string // granted connector/uri
		templates    []string
		prompts      []string
	}{
		{"alice", "eng", []string{"a_echo", "a_rich"}, []string{"a/test://a/readme", "a/shared://common"},
			[]string{"test://a/items/{id}"}, []string{"a_greet"}},
		{"bob", "ops", withPrefix(allTools, "b_"), []string{"b/test://b/logo.png", "b/shared://common"},
			nil, []string{"a_plain", "b_plain"}},
	}
	for _, era := range rawEras {
		for _, u := range users {
			t.Run(era.Name+"/"+u.user, func(t *testing.T) {
				c := dialRaw(t, g.URL+"/mcp", agentHeader(u.user, u.groups), era.version)
				tools := listed(t, c.result("tools/list", nil), "tools", "name")
				prompts := listed(t, c.result("prompts/list", nil), "prompts", "name")
				templates := listed(t, c.result("resources/templates/list", nil), "resourceTemplates", "uriTemplate")
				resources := resourceIDs(t, c)

				want := append(slices.Clone(u.tools), "mcpgate_list_connectors")
				if !sameSet(tools, want) {
					t.Errorf("tools = %v, want %v", tools, want)
				}
				if !sameSet(prompts, u.prompts) || !sameSet(templates, u.templates) || !sameSet(resources, u.resources) {
					t.Errorf("prompts %v, templates %v, resources %v; want %v, %v, %v",
						prompts, templates, resources, u.prompts, u.templates, u.resources)
				}

				for _, name := range allTools {
					_, tool, _ := strings.Cut(name, "_")
					r := c.call("tools/call", map[string]any{"name": name, "arguments": callArgs[tool]})
					checkParity(t, "tool "+name, slices.Contains(tools, name), r)
				}
				for _, name := range allPrompts {
					r := c.call("prompts/get", map[string]any{"name": name, "arguments": map[string]any{"who": "x"}})
					checkParity(t, "prompt "+name, slices.Contains(prompts, name), r)
				}
				for _, tmpl := range allTemplates {
					uri := strings.Replace(tmpl, "{id}", "7", 1)
					r := c.call("resources/read", map[string]any{"uri": uri})
					checkParity(t, "template "+tmpl, slices.Contains(templates, tmpl), r)
				}
				for _, id := range []string{"a", "b"} {
					for _, uri := range catalogURIs(id) {
						r := c.call("resources/read", map[string]any{"uri": "mcpgate://" + id + "/" + uri})
						checkParity(t, "resource "+id+"/"+uri, slices.Contains(resources, id+"/"+uri), r)
					}
				}
			})
		}
	}
}

// withPrefix returns the names that start with prefix.
func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// resourceIDs returns the caller's resources as connector/uri. A URI that
// only one connector offers the caller is listed bare; reading it tells
// whose it is.
func resourceIDs(t testing.TB, c *rawClient) []string {
	t.Helper()
	var out []string
	for _, uri := range listed(t, c.result("resources/list", nil), "resources", "uri") {
		if rest, ok := strings.CutPrefix(uri, "mcpgate://"); ok {
			out = append(out, rest)
			continue
		}
		if uri == testupstream.SharedResourceURI {
			text := textOf(t, c.result("resources/read", map[string]any{"uri": uri}))
			out = append(out, strings.TrimPrefix(text, "common from ")+"/"+uri)
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(uri, "test://"), "/")
		out = append(out, id+"/"+uri)
	}
	return out
}

// checkParity fails unless a listed item is usable and an unlisted one is
// refused as not granted.
func checkParity(t *testing.T, what string, listed bool, r *rawReply) {
	t.Helper()
	switch {
	case listed && r.result == nil:
		t.Errorf("%s is listed but refused: %s", what, r.body)
	case !listed && !notGranted(r):
		t.Errorf("%s is not listed but not refused as not granted: %d %s", what, r.status, r.body)
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestRefusalRevealsNothing checks that what a caller cannot see is
// refused exactly as what does not exist: byte for byte against a gateway
// without the connector, and with only the name changed within one.
func TestRefusalRevealsNothing(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	with := startGateway(t, conns, splitRules)
	without := startGateway(t, conns[:1], splitRules) // no connector b at all
	requests := []struct {
		method string
		params map[string]any
	}{
		{"tools/call", map[string]any{"name": "b_echo", "arguments": map[string]any{"message": "x"}}},
		{"prompts/get", map[string]any{"name": "b_greet", "arguments": map[string]any{"who": "x"}}},
		{"resources/read", map[string]any{"uri": "test://b/readme"}},
		{"resources/read", map[string]any{"uri": "mcpgate://b/test://b/readme"}},
		{"resources/read", map[string]any{"uri": "test://b/items/1"}},
		{"completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "b_greet"}, "argument": map[string]any{"name": "who", "value": "a"}}},
		{"completion/complete", map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "test://b/items/{id}"}, "argument": map[string]any{"name": "id", "value": "1"}}},
	}
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			// alice (eng) sees connector a only.
			cw := dialRaw(t, with.URL+"/mcp", agentHeader("alice", "eng"), era.version)
			co := dialRaw(t, without.URL+"/mcp", agentHeader("alice", "eng"), era.version)
			for _, rq := range requests {
				rw, ro := cw.call(rq.method, rq.params), co.call(rq.method, rq.params)
				if !notGranted(rw) || !strings.Contains(rw.err.Message, "not granted") {
					t.Errorf("%s %v: %s", rq.method, rq.params, rw.body)
				}
				if rw.status != ro.status || !bytes.Equal(rw.errRaw, ro.errRaw) {
					t.Errorf("%s %v: hidden connector answers %d %s, missing one %d %s", rq.method, rq.params, rw.status, rw.errRaw, ro.status, ro.errRaw)
				}
			}
			// Within one gateway: a hidden connector, one that does not
			// exist, an ungranted item and a missing one differ only in
			// the name they quote.
			pairs := [][2]string{{"b_echo", "zz_echo"}, {"a_delete_everything", "a_no_such_tool"}, {"a_fail", "b_fail"}}
			for _, p := range pairs {
				r0 := cw.call("tools/call", map[string]any{"name": p[0]})
				r1 := cw.call("tools/call", map[string]any{"name": p[1]})
				if !notGranted(r0) || !notGranted(r1) || r0.status != r1.status ||
					strings.ReplaceAll(string(r0.errRaw), p[0], p[1]) != string(r1.errRaw) {
					t.Errorf("refusals differ: %d %s and %d %s", r0.status, r0.errRaw, r1.status, r1.errRaw)
				}
			}
		})
	}
	// A hidden connector's own endpoint is as absent as a missing one's.
	for _, path := range []string{"/connectors/b/mcp", "/connectors/zz/mcp"} {
		rw := newRaw(t, with.URL+path, agentHeader("alice", "eng")).post([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`), nil)
		ro := newRaw(t, without.URL+"/connectors/b/mcp", agentHeader("alice", "eng")).post([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`), nil)
		if rw.status != http.StatusNotFound || rw.status != ro.status || !bytes.Equal(rw.body, ro.body) {
			t.Errorf("%s: %d %s; missing connector: %d %s", path, rw.status, rw.body, ro.status, ro.body)
		}
	}
}

// TestDenyByDefault checks that no rules, or no caller identity, gives
// nothing at all.
func TestDenyByDefault(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	tests := []struct {
		name  string
		rules []grants.Rule
		user  string
	}{
		{"no rules", nil, "alice"},
		{"empty caller", []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}, {Sources: []string{"group:eng"}, Tools: []string{"**"}}}, ""},
	}
	for _, tt := range tests {
		for _, era := range rawEras {
			t.Run(tt.name+"/"+era.Name, func(t *testing.T) {
				g := startGateway(t, conns, tt.rules)
				c := dialRaw(t, g.URL+"/mcp", agentHeader(tt.user, "eng"), era.version)
				for _, l := range []struct{ method, field string }{
					{"tools/list", "tools"}, {"resources/list", "resources"},
					{"resources/templates/list", "resourceTemplates"}, {"prompts/list", "prompts"},
				} {
					if got := entriesOf(t, c.result(l.method, nil), l.field); len(got) != 0 {
						t.Errorf("%s = %s", l.method, got)
					}
				}
				for _, rq := range []struct {
					method string
					params map[string]any
				}{
					{"tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}}},
					{"tools/call", map[string]any{"name": "mcpgate_list_connectors"}},
					{"prompts/get", map[string]any{"name": "a_greet", "arguments": map[string]any{"who": "x"}}},
					{"resources/read", map[string]any{"uri": "test://a/readme"}},
					{"resources/read", map[string]any{"uri": "test://a/items/1"}},
					{"completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "a_greet"}, "argument": map[string]any{"name": "who", "value": "a"}}},
				} {
					if r := c.call(rq.method, rq.params); !notGranted(r) {
						t.Errorf("%s %v: %s", rq.method, rq.params, r.body)
					}
				}
				r := newRaw(t, g.URL+"/connectors/a/mcp", agentHeader(tt.user, "eng")).post([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`), nil)
				if r.status != http.StatusNotFound {
					t.Errorf("/connectors/a/mcp: %d %s", r.status, r.body)
				}
			})
		}
	}
}

// TestReadOnly checks read-only grants against the operation of each
// tool, the connector's operation overrides and its allow list.
func TestReadOnly(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	readOnly := []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"a"}, Operations: grants.ReadOnly}}
	all := []grants.Rule{{Sources: []string{"*"}, Tools: []string{"**"}}}
	tests := []struct {
		name    string
		rules   []grants.Rule
		tools   connectors.ToolPolicy
		present []string
		absent  []string
	}{
		{"hint", readOnly, connectors.ToolPolicy{}, []string{"echo", "rich", "extension"}, []string{"delete_everything", "fail", "slow", "whoami"}},
		{"override write", readOnly, connectors.ToolPolicy{Operations: map[string]connectors.Operation{"echo": connectors.Write}}, []string{"rich"}, []string{"echo", "delete_everything"}},
		{"override read", readOnly, connectors.ToolPolicy{Operations: map[string]connectors.Operation{"delete_everything": connectors.Read}}, []string{"echo", "delete_everything"}, []string{"fail"}},
		{"allow list", all, connectors.ToolPolicy{Allow: []string{"echo", "delete_everything"}}, []string{"echo", "delete_everything"}, []string{"rich", "fail", "whoami"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := testConnector(t, "a", up, bearer)
			conn.Tools = tt.tools
			g := startGateway(t, []*connectors.Connector{conn}, tt.rules)
			for _, era := range rawEras {
				c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
				tools := listed(t, c.result("tools/list", nil), "tools", "name")
				for _, name := range tt.present {
					r := c.call("tools/call", map[string]any{"name": "a_" + name, "arguments": callArgs[name]})
					if !slices.Contains(tools, "a_"+name) || r.result == nil {
						t.Errorf("%s: a_%s listed %v, call %s", era.Name, name, slices.Contains(tools, "a_"+name), r.body)
					}
				}
				for _, name := range tt.absent {
					r := c.call("tools/call", map[string]any{"name": "a_" + name, "arguments": callArgs[name]})
					if slices.Contains(tools, "a_"+name) || !notGranted(r) {
						t.Errorf("%s: a_%s listed %v, call %s", era.Name, name, slices.Contains(tools, "a_"+name), r.body)
					}
				}
				// The connector's own endpoint applies the same checks.
				one := dialRaw(t, g.URL+"/connectors/a/mcp", agentHeader("alice", ""), era.version)
				scoped := listed(t, one.result("tools/list", nil), "tools", "name")
				for _, name := range tt.absent {
					if r := one.call("tools/call", map[string]any{"name": name, "arguments": callArgs[name]}); slices.Contains(scoped, name) || !notGranted(r) {
						t.Errorf("%s scoped: %s listed %v, call %s", era.Name, name, slices.Contains(scoped, name), r.body)
					}
				}
			}
		})
	}
}
