package mcpmux_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/toolsearch"
)

// found names the tools of a, as connector/tool.
func found(a mcpmux.SearchAnswer) []string {
	var out []string
	for _, h := range a.Tools {
		out = append(out, h.Connector+"/"+h.Tool)
	}
	return out
}

// skipped reports whether a skipped connector id, with a reason holding
// why.
func skipped(a mcpmux.SearchAnswer, id, why string) bool {
	return slices.ContainsFunc(a.Skipped, func(s mcpmux.SkippedConnector) bool {
		return s.Connector == id && strings.Contains(s.Reason, why)
	})
}

// TestSearchFor checks the admin's search: with search mode off it finds
// what the caller's own search would, never a tool of the catalog the
// caller may not call; a per-user connector is searched only in the list
// cached for that user, and one with none is skipped, saying so; a bad
// query or limit is refused before any list is fetched.
func TestSearchFor(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	up := &perUser{tools: map[string]map[string]mcp.Tool{}}
	up.set("alice", mcp.NewTool("alpha_report", mcp.WithDescription("Writes the alpha report.")))
	up.set("bob", mcp.NewTool("bravo_report", mcp.WithDescription("Writes the bravo report.")))
	conns = append(conns, up.start(t, "p", "alpha_report", "bravo_report"))
	rules := []grants.Rule{
		{Sources: []string{"user:alice"}, Tools: []string{"a/echo", "a/whoami", "p/**"}},
		{Sources: []string{"user:bob"}, Tools: []string{"p/**"}},
	}
	g := startGateway(t, conns, rules, func(o *mcpmux.Options) {
		o.Credentials = func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
			if req.Connector.ID == "p" {
				return perUserCredentials(ctx, req)
			}
			return mcpmux.StaticCredentials(ctx, req)
		}
	})
	perUserOnly := func(id string) bool { return id == "p" }
	ctx := context.Background()
	search := func(user, query string) mcpmux.SearchAnswer {
		t.Helper()
		a, err := g.mux.Search(ctx, mcpmux.SearchRequest{Caller: grants.Caller{ID: user}, Query: query, Limit: 50, CachedOnly: perUserOnly})
		if err != nil {
			t.Fatalf("search %q as %s: %v", query, user, err)
		}
		return a
	}

	// Refused before anything is listed.
	for _, tc := range []struct {
		query string
		limit int
		want  error
	}{
		{"echo", 51, mcpmux.ErrSearchLimit},
		{"echo", -1, mcpmux.ErrSearchLimit},
		{strings.Repeat("echo ", 300), 5, toolsearch.ErrQueryTooLong},
		{"  ?! ", 5, toolsearch.ErrEmptyQuery},
	} {
		if _, err := g.mux.Search(ctx, mcpmux.SearchRequest{Caller: grants.Caller{ID: "alice"}, Query: tc.query, Limit: tc.limit}); !errors.Is(err, tc.want) {
			t.Errorf("query %.20q limit %d: %v, want %v", tc.query, tc.limit, err, tc.want)
		}
	}
	if n := countMethod(ups["a"], "tools/list"); n != 0 {
		t.Errorf("a refused search listed a's tools %d times", n)
	}

	// a's list is fetched with the shared credential; delete_everything
	// is in it, and not alice's.
	a := search("alice", "delete everything")
	if got := found(a); slices.Contains(got, "a/delete_everything") {
		t.Errorf("alice finds %v, an ungranted tool among them", got)
	}
	if !skipped(a, "p", "no tool list") {
		t.Errorf("p, with no list cached for alice, is not said to be skipped: %+v", a.Skipped)
	}
	a = search("alice", "echo")
	if len(a.Tools) == 0 || a.Tools[0].Connector != "a" || a.Tools[0].Tool != "echo" || a.Tools[0].Name != "a_echo" ||
		a.Tools[0].Description != "Returns the message it is given." || !strings.Contains(string(a.Tools[0].InputSchema), "message") {
		t.Errorf("alice's search for echo: %+v", a.Tools)
	}

	// Once alice's agent lists, p's list of hers is searched; bob's is
	// still not cached, and he never finds hers.
	toolNames(t, g.connect(t, "/mcp", "alice", ""))
	if got := found(search("alice", "report")); !slices.Contains(got, "p/alpha_report") || slices.Contains(got, "p/bravo_report") {
		t.Errorf("alice's search for report after her agent listed: %v", got)
	}
	b := search("bob", "report")
	if len(b.Tools) != 0 || !skipped(b, "p", "no tool list") {
		t.Errorf("bob, with no list cached: %+v", b)
	}
	if got := found(search("nobody", "echo")); len(got) != 0 {
		t.Errorf("a caller with no grant finds %v", got)
	}
}
