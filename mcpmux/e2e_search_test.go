package mcpmux_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// searchTools are what search mode lists, besides the tools always listed.
var searchTools = []string{"mcpgate_list_connectors", "mcpgate_search_tools", "mcpgate_call_tool"}

// searchGrants give alice every tool of a and only echo of b, so that b's
// other tools are in the catalog (b's list is fetched for her) and not
// hers.
var searchGrants = []grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"a/**", "b/echo"}}}

// searchResult is what mcpgate_search_tools answers.
type searchResult struct {
	Tools []struct {
		Name, Title, Description string
		InputSchema              json.RawMessage
	} `json:"tools"`
}

// search calls mcpgate_search_tools and returns the names it found.
func search(t *testing.T, c *rawClient, query string, limit int) []string {
	t.Helper()
	res := c.result("tools/call", map[string]any{"name": "mcpgate_search_tools", "arguments": map[string]any{"query": query, "limit": limit}})
	var out struct {
		Structured searchResult `json:"structuredContent"`
		IsError    bool         `json:"isError"`
	}
	decodeInto(t, res, &out)
	if out.IsError {
		t.Fatalf("search %q: %s", query, res)
	}
	var names []string
	for _, tool := range out.Structured.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// TestSearchMode checks tool_search on end to end, in both eras, with a
// real client: tools/list shows the search tools and the tools always
// listed, a search finds a granted tool with its schema and never an
// ungranted one the catalog holds, mcpgate_call_tool answers with the
// upstream's result and is audited as the tool it called, and an
// ungranted name gets the very error a direct call of it gets.
func TestSearchMode(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	rec := &recorder{}
	g := startGateway(t, conns, searchGrants, func(o *mcpmux.Options) {
		o.ToolSearch = mcpmux.ToolSearch{Mode: mcpmux.SearchOn}
		o.AlwaysList = []string{"a/echo", "b/delete_everything"}
		o.Observer = rec
	})
	for _, era := range eras {
		t.Run(era.Name+"/list", func(t *testing.T) {
			c := g.connect(t, "/mcp", "alice", "", era.Opts...)
			// b/delete_everything is always listed but not granted: absent.
			if got, want := toolNames(t, c), append([]string{"a_echo"}, searchTools...); !reflect.DeepEqual(got, want) {
				t.Errorf("tools = %v, want %v", got, want)
			}
			res, err := callTool(t, c, "mcpgate_call_tool", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "through search"}})
			if err != nil || res.IsError || len(res.Content) != 1 || mcp.GetTextFromContent(res.Content[0]) != "through search" {
				t.Fatalf("mcpgate_call_tool: %+v, %v", res, err)
			}
		})
	}
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			res := c.result("tools/call", map[string]any{"name": "mcpgate_search_tools", "arguments": map[string]any{"query": "credentials it was called with"}})
			var found struct {
				Structured searchResult `json:"structuredContent"`
				Content    []struct{ Text string }
			}
			decodeInto(t, res, &found)
			if len(found.Structured.Tools) == 0 || found.Structured.Tools[0].Name != "a_whoami" {
				t.Fatalf("search for whoami: %s", res)
			}
			var text searchResult
			decodeInto(t, []byte(found.Content[0].Text), &text)
			if !reflect.DeepEqual(text, found.Structured) {
				t.Errorf("text %s differs from structuredContent", found.Content[0].Text)
			}
			if hit := found.Structured.Tools[0]; hit.Description != "Reports the credentials it was called with." || !strings.Contains(string(hit.InputSchema), `"object"`) {
				t.Errorf("hit = %+v", hit)
			}
			// b's delete_everything is in the catalog (b's list was
			// fetched for alice's b/echo) and not hers.
			for _, q := range []string{"delete everything", "b_delete_everything", "delete_everything"} {
				got := search(t, c, q, 50)
				if slices.Contains(got, "b_delete_everything") || !slices.Contains(got, "a_delete_everything") {
					t.Errorf("search %q = %v", q, got)
				}
			}
			if got := search(t, c, "echo", 50); !slices.Contains(got, "b_echo") || !slices.Contains(got, "a_echo") {
				t.Errorf("search echo = %v, want both granted echoes", got)
			}

			// Through mcpgate_call_tool, the upstream's result as a direct
			// call gets it.
			args := map[string]any{"message": "hello"}
			direct := c.result("tools/call", map[string]any{"name": "b_echo", "arguments": args})
			through := c.result("tools/call", map[string]any{"name": "mcpgate_call_tool", "arguments": map[string]any{"name": "b_echo", "arguments": args}})
			if string(through) != string(direct) || !strings.Contains(string(through), "hello") {
				t.Errorf("through mcpgate_call_tool %s, direct %s", through, direct)
			}
			call := rec.last(t)
			if call.Connector != "b" || call.Tool != "echo" || !call.Granted || call.Outcome != mcpmux.OutcomeOK || string(call.Arguments) != `{"message":"hello"}` {
				t.Errorf("audited as %+v", call)
			}

			// An ungranted tool, and one that does not exist: refused
			// with exactly a direct call's error, and nothing upstream.
			before := countMethod(ups["b"], "tools/call")
			for _, name := range []string{"b_delete_everything", "b_nothing", "nothing"} {
				d := c.call("tools/call", map[string]any{"name": name, "arguments": map[string]any{}})
				w := c.call("tools/call", map[string]any{"name": "mcpgate_call_tool", "arguments": map[string]any{"name": name, "arguments": map[string]any{}}})
				if !notGranted(w) || string(w.errRaw) != string(d.errRaw) {
					t.Errorf("%s through mcpgate_call_tool: %s, directly: %s", name, w.errRaw, d.errRaw)
				}
				if call := rec.last(t); call.Tool != name || call.Granted || call.Outcome != mcpmux.OutcomeDenied {
					t.Errorf("refusal of %s audited as %+v", name, call)
				}
			}
			if n := countMethod(ups["b"], "tools/call"); n != before {
				t.Errorf("b got %d tool calls for refused names", n-before)
			}
			// A wrapper does not wrap itself.
			nested := map[string]any{"name": "mcpgate_call_tool", "arguments": map[string]any{"name": "a_echo", "arguments": args}}
			if r := c.call("tools/call", map[string]any{"name": "mcpgate_call_tool", "arguments": nested}); !notGranted(r) {
				t.Errorf("nested mcpgate_call_tool: %s", r.body)
			}
			if r := c.call("tools/call", map[string]any{"name": "mcpgate_call_tool", "arguments": map[string]any{"arguments": map[string]any{}}}); r.err == nil || !strings.Contains(r.err.Message, "arguments.name") {
				t.Errorf("no name: %s", r.body)
			}
		})
	}
	// A connector's own endpoint is untouched by search mode.
	c := dialRaw(t, g.URL+"/connectors/a/mcp", agentHeader("alice", ""), v20251125)
	if got := listed(t, c.result("tools/list", nil), "tools", "name"); slices.Contains(got, "mcpgate_search_tools") || !slices.Contains(got, "echo") {
		t.Errorf("a's own endpoint lists %v", got)
	}
}

// TestSearchAuto checks auto: a view of more tools than the threshold gets
// search mode, one within it the tools as before, and the search tools do
// not exist for it (a call of them is refused as unknown).
func TestSearchAuto(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	// alice's view: a's 9 tools and b's echo, 10 in all.
	for _, tt := range []struct {
		threshold int
		search    bool
	}{{9, true}, {10, false}, {50, false}} {
		g := startGateway(t, conns, searchGrants, func(o *mcpmux.Options) {
			o.ToolSearch = mcpmux.ToolSearch{Mode: mcpmux.SearchAuto, Threshold: tt.threshold}
		})
		for _, era := range rawEras {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			got := listed(t, c.result("tools/list", nil), "tools", "name")
			if tt.search {
				if !reflect.DeepEqual(got, searchTools) {
					t.Errorf("auto %d, %s: tools = %v, want %v", tt.threshold, era.Name, got, searchTools)
				}
				continue
			}
			if len(got) != 11 || slices.Contains(got, "mcpgate_search_tools") {
				t.Errorf("auto %d, %s: tools = %v, want the 10 tools and mcpgate_list_connectors", tt.threshold, era.Name, got)
			}
			for _, name := range []string{"mcpgate_search_tools", "mcpgate_call_tool"} {
				r := c.call("tools/call", map[string]any{"name": name, "arguments": map[string]any{"query": "echo", "name": "a_echo"}})
				if !notGranted(r) {
					t.Errorf("auto %d, %s: %s outside search mode: %s", tt.threshold, era.Name, name, r.body)
				}
			}
		}
	}
}

// TestSearchSiteWins checks that a site's setting, carried by the request
// (WithToolSearch), wins over the Mux's: off for the Mux and on for the
// site, and the other way round.
func TestSearchSiteWins(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	for _, tt := range []struct {
		global, site string
		search       bool
	}{{mcpmux.SearchOff, mcpmux.SearchOn, true}, {mcpmux.SearchOn, mcpmux.SearchOff, false}, {mcpmux.SearchOn, "", true}} {
		g := startGateway(t, conns, searchGrants, func(o *mcpmux.Options) { o.ToolSearch = mcpmux.ToolSearch{Mode: tt.global} })
		site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(mcpmux.WithToolSearch(r.Context(), mcpmux.ToolSearch{Mode: tt.site}))
			g.mux.ServeMCP(w, r, grants.Caller{ID: r.Header.Get("X-Test-User")}, "")
		}))
		t.Cleanup(site.Close)
		c := dialRaw(t, site.URL+"/mcp", agentHeader("alice", ""), v20251125)
		got := listed(t, c.result("tools/list", nil), "tools", "name")
		if slices.Contains(got, "mcpgate_search_tools") != tt.search {
			t.Errorf("global %q, site %q: tools = %v", tt.global, tt.site, got)
		}
	}
}

// TestSearchConnectedOnly checks that a per-user connector the caller has
// not connected lends the search none of its tools, granted as they are,
// while another caller connected to it finds them.
func TestSearchConnectedOnly(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	creds := func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
		if req.Caller.ID == "alice" && req.Connector.ID == "b" {
			return mcpmux.Credential{}, &mcpmux.ConsentRequired{Connector: "b", Status: mcpmux.StatusNeedsAuth, URL: connectURL, Message: "Connector b needs your consent."}
		}
		return mcpmux.StaticCredentials(ctx, req)
	}
	g := startGateway(t, conns, []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}}, func(o *mcpmux.Options) {
		o.ToolSearch = mcpmux.ToolSearch{Mode: mcpmux.SearchOn}
		o.Credentials = creds
	})
	bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
	if got := search(t, bob, "echo", 50); !slices.Contains(got, "b_echo") {
		t.Fatalf("bob, connected to b: %v", got)
	}
	alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if got := search(t, alice, "echo", 50); slices.Contains(got, "b_echo") || !slices.Contains(got, "a_echo") {
		t.Errorf("alice, not connected to b: %v", got)
	}
}

// TestSearchBadInput checks that a search with a bad query or limit is a
// tool error that says what is wrong.
func TestSearchBadInput(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, searchGrants, func(o *mcpmux.Options) { o.ToolSearch = mcpmux.ToolSearch{Mode: mcpmux.SearchOn} })
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	for _, tt := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, "query must be a string"},
		{map[string]any{"query": "echo", "limit": 0}, "limit must be a whole number"},
		{map[string]any{"query": "echo", "limit": 2.5}, "limit must be a whole number"},
		{map[string]any{"query": strings.Repeat("echo ", 300)}, "longer than 1024 bytes"},
		{map[string]any{"query": "?!"}, "no word"},
	} {
		res := c.result("tools/call", map[string]any{"name": "mcpgate_search_tools", "arguments": tt.args})
		if !strings.Contains(string(res), `"isError":true`) || !strings.Contains(string(res), tt.want) {
			t.Errorf("%v: %s, want a tool error saying %q", tt.args, res, tt.want)
		}
	}
	if got := search(t, c, "echo", 500); len(got) == 0 || len(got) > 50 {
		t.Errorf("limit 500: %d tools, want 1 to 50", len(got))
	}
}

// TestSearchFollowsCatalog checks that a tool an upstream adds is found
// once the gateway fetches the list again: the index follows the catalog.
func TestSearchFollowsCatalog(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, searchGrants, func(o *mcpmux.Options) {
		o.ToolSearch = mcpmux.ToolSearch{Mode: mcpmux.SearchOn}
		o.ListTTL = 50 * time.Millisecond
	})
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if got := search(t, c, "zebra", 10); len(got) != 0 {
		t.Fatalf("zebra before it exists: %v", got)
	}
	ups["a"].MCP.AddTool(mcp.NewTool("zebra_finder", mcp.WithDescription("Finds zebras.")), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("a zebra"), nil
	})
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(search(t, c, "zebra", 10), "a_zebra_finder") {
		if time.Now().After(deadline) {
			t.Fatal("the new tool was never found")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
