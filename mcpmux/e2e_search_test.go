package mcpmux_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
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

// perUser is an MCP upstream whose tool list depends on the user its
// credential names (the X-Grant header), as a per-user connector's may:
// each user is listed the tools of its own set, which a test may change.
type perUser struct {
	mu    sync.Mutex
	tools map[string]map[string]mcp.Tool // user → name → definition
}

// userKey is the context key of the user a request to perUser names.
type userKey struct{}

// set makes tools the whole of user's list.
func (p *perUser) set(user string, tools ...mcp.Tool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tools[user] = map[string]mcp.Tool{}
	for _, tool := range tools {
		p.tools[user][tool.Name] = tool
	}
}

// filter lists, and lets be called, the tools of the request's user, in
// its user's definition.
func (p *perUser) filter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	user, _ := ctx.Value(userKey{}).(string)
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []mcp.Tool
	for _, tool := range tools {
		if own, ok := p.tools[user][tool.Name]; ok {
			out = append(out, own)
		}
	}
	return out
}

// start serves the upstream on 127.0.0.1, with every name any user may be
// listed, and returns it as connector id.
func (p *perUser) start(t *testing.T, id string, names ...string) *connectors.Connector {
	t.Helper()
	s := server.NewMCPServer("per-user", "1.0.0", server.WithToolCapabilities(true), server.WithToolFilter(p.filter))
	for _, name := range names {
		s.AddTool(mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(name + " ran"), nil
		})
	}
	h := server.NewStreamableHTTPServer(s,
		server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)),
		server.WithStreamableHTTPProtocolVersions(testupstream.LegacyVersions()...))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, r.Header.Get("X-Grant"))))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/mcp")
	return &connectors.Connector{ID: id, URL: u, Timeout: 10 * time.Second}
}

// perUserCredentials gives each caller a credential of its own at every
// connector, naming it to the upstream.
func perUserCredentials(_ context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
	return mcpmux.Credential{Key: "user:" + req.Caller.ID, Header: http.Header{"X-Grant": {req.Caller.ID}}}, nil
}

// searchNames calls mcpgate_search_tools through a real client and returns
// the names it found; it may run on any goroutine.
func searchNames(c *client.Client, query string) ([]string, error) {
	res, err := agenttest.Call(c, "mcpgate_search_tools", map[string]any{"query": query, "limit": 50})
	if err != nil {
		return nil, err
	}
	if res.IsError {
		return nil, fmt.Errorf("search %q: tool error %+v", query, res.Content)
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return nil, err
	}
	var found searchResult
	if err := json.Unmarshal(raw, &found); err != nil {
		return nil, fmt.Errorf("search %q: %s: %w", query, raw, err)
	}
	names := make([]string, 0, len(found.Tools))
	for _, tool := range found.Tools {
		names = append(names, tool.Name)
	}
	return names, nil
}

// TestSearchPerUser checks a per-user connector whose users are listed
// different tools, and a tool both are listed with their own description:
// concurrent searches of the two, while their lists are fetched again,
// each find their own tools (in their own definition) and never the
// other's, and never write the index; a tool that leaves a user's list
// leaves the index, which holds each definition once.
func TestSearchPerUser(t *testing.T) {
	t.Parallel()
	status := func(word string) mcp.Tool {
		return mcp.NewTool("status", mcp.WithDescription("Reports the "+word+" status."))
	}
	common := mcp.NewTool("common_lookup", mcp.WithDescription("Looks up a report by its number."))
	alpha := mcp.NewTool("alpha_report", mcp.WithDescription("Writes the alpha report."))
	bravo := mcp.NewTool("bravo_report", mcp.WithDescription("Writes the bravo report."))
	up := &perUser{tools: map[string]map[string]mcp.Tool{}}
	up.set("alice", common, alpha, status("xylophone"))
	up.set("bob", common, bravo, status("zeppelin"))
	conn := up.start(t, "p", "common_lookup", "alpha_report", "bravo_report", "status")
	g := startGateway(t, []*connectors.Connector{conn}, everyone, func(o *mcpmux.Options) {
		o.ToolSearch = mcpmux.ToolSearch{Mode: mcpmux.SearchOn}
		o.Credentials = perUserCredentials
		// Short, so that the lists are fetched again while the users
		// search: an unchanged list must not write the index either.
		o.ListTTL = 20 * time.Millisecond
	})
	type user struct {
		c                  *client.Client
		mine, theirs       string // the report tool each is listed alone
		ownWord, otherWord string // in its own status's description, and the other's
	}
	users := []user{
		{g.connect(t, "/mcp", "alice", ""), "p_alpha_report", "p_bravo_report", "xylophone", "zeppelin"},
		{g.connect(t, "/mcp", "bob", ""), "p_bravo_report", "p_alpha_report", "zeppelin", "xylophone"},
	}
	for _, u := range users {
		if _, err := searchNames(u.c, "report"); err != nil {
			t.Fatal(err)
		}
	}
	docs, writes := mcpmux.SearchIndex(g.mux)
	if docs != 5 {
		t.Errorf("the index holds %d documents, want 5: common_lookup once, each report, and each user's status", docs)
	}

	check := func(u user) error {
		got, err := searchNames(u.c, "report")
		if err != nil {
			return err
		}
		if !slices.Contains(got, u.mine) || !slices.Contains(got, "p_common_lookup") || slices.Contains(got, u.theirs) {
			return fmt.Errorf("search report for %s = %v", u.mine, got)
		}
		if got, err = searchNames(u.c, u.ownWord); err != nil || !slices.Contains(got, "p_status") {
			return fmt.Errorf("search %s for %s = %v, %v: want its own status", u.ownWord, u.mine, got, err)
		}
		// The other's status description must not rank this user's.
		if got, err = searchNames(u.c, u.otherWord); err != nil || len(got) != 0 {
			return fmt.Errorf("search %s for %s = %v, %v: want nothing", u.otherWord, u.mine, got, err)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, u := range users {
		for range 4 {
			wg.Go(func() {
				for range 8 {
					if err := check(u); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, after := mcpmux.SearchIndex(g.mux); after != writes {
		t.Errorf("the index was written %d times while the users only searched", after-writes)
	}

	// bravo_report leaves bob's list, and with it the index.
	up.set("bob", common, status("zeppelin"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := searchNames(users[1].c, "report")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, "p_bravo_report") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bravo_report is still found after it left bob's list")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if docs, _ := mcpmux.SearchIndex(g.mux); docs != 4 {
		t.Errorf("the index holds %d documents after bravo_report left, want 4", docs)
	}
	if err := check(users[0]); err != nil {
		t.Error(err)
	}
}

// TestSearchIndexesCachedLists checks that lists the cache holds before
// anyone searches (here fetched for a site with search off) are indexed
// when search mode first serves, with no fetch to index them.
func TestSearchIndexesCachedLists(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, searchGrants)
	on := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(mcpmux.WithToolSearch(r.Context(), mcpmux.ToolSearch{Mode: mcpmux.SearchOn}))
		g.mux.ServeMCP(w, r, grants.Caller{ID: r.Header.Get("X-Test-User")}, "")
	}))
	t.Cleanup(on.Close)
	plain := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if got := listed(t, plain.result("tools/list", nil), "tools", "name"); !slices.Contains(got, "a_whoami") {
		t.Fatalf("search off: tools = %v", got)
	}
	if docs, _ := mcpmux.SearchIndex(g.mux); docs != 0 {
		t.Errorf("the index holds %d documents before anyone searched", docs)
	}
	c := dialRaw(t, on.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if got := search(t, c, "credentials it was called with", 5); len(got) == 0 || got[0] != "a_whoami" {
		t.Errorf("search on the list cached before = %v", got)
	}
}
