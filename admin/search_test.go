package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// searchAPI is an admin API over a gateway serving connector srch, a real
// MCP upstream, whose echo and whoami alice may call, and no other tool:
// delete_everything is in the catalog and not hers.
func searchAPI(t *testing.T) *API {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{Name: "srch"})
	reg, err := connectors.NewRegistry(connectors.Options{
		Config: []connectors.Config{{ID: "srch", URL: up.URL}},
		Grants: []grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"srch/echo", "srch/whoami"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Build(&gateway.Options{Logger: zap.NewNop()}, reg.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	live := new(gateway.Live)
	live.Set(g)
	t.Cleanup(func() {
		live.Close()
		reg.Close()
	})
	return &API{Registry: reg, Live: live}
}

// searched is GET /mcpgate/tools/search's answer.
type searched struct {
	User  string
	Query string
	Tools []struct {
		Connector, Tool, Name, Description string
		InputSchema                        json.RawMessage
	}
}

// TestAdminToolSearch: the admin API answers what a caller's search
// finds, by its grants: never a tool of the catalog the caller may not
// call, nothing for a caller with no grant; a missing user or query, a
// bad limit and a query over the agents' bound are clear 400s.
func TestAdminToolSearch(t *testing.T) {
	api := searchAPI(t)
	get := func(query url.Values) (int, string) {
		return serveAdmin(api, "GET", "/mcpgate/tools/search?"+query.Encode())
	}
	for _, q := range []string{"delete everything", "delete_everything", "srch_delete_everything", "pretends"} {
		code, body := get(url.Values{"q": {q}, "user": {"alice"}, "limit": {"50"}})
		var got searched
		if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
			t.Fatalf("alice's search for %q: %d %s", q, code, body)
		}
		for _, h := range got.Tools {
			if h.Tool != "echo" && h.Tool != "whoami" {
				t.Errorf("alice's search for %q finds %s, which she may not call", q, h.Name)
			}
		}
	}
	code, body := get(url.Values{"q": {"return the message"}, "user": {"alice"}, "groups": {"staff,ops"}})
	var got searched
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
		t.Fatalf("alice's search for echo: %d %s", code, body)
	}
	if len(got.Tools) == 0 || got.User != "alice" || got.Query != "return the message" {
		t.Fatalf("alice's search for echo: %s", body)
	}
	if h := got.Tools[0]; h.Connector != "srch" || h.Tool != "echo" || h.Name != "srch_echo" || !strings.Contains(string(h.InputSchema), "message") {
		t.Errorf("the best hit: %+v", h)
	}
	var names []string
	for _, h := range got.Tools {
		names = append(names, h.Tool)
	}
	if slices.ContainsFunc(names, func(n string) bool { return n != "echo" && n != "whoami" }) {
		t.Errorf("alice finds %v: a tool she may not call", names)
	}
	if code, body := get(url.Values{"q": {"echo"}, "user": {"mallory"}}); code != http.StatusOK || strings.Contains(body, "srch_") {
		t.Errorf("a caller with no grant: %d %s", code, body)
	}

	for _, tc := range []struct {
		query url.Values
		want  string
	}{
		{url.Values{"user": {"alice"}}, "?q="},
		{url.Values{"q": {"  "}, "user": {"alice"}}, "?q="},
		{url.Values{"q": {"echo"}}, "?user="},
		{url.Values{"q": {"echo"}, "user": {"alice"}, "limit": {"many"}}, "from 1 to 50"},
		{url.Values{"q": {"echo"}, "user": {"alice"}, "limit": {"0"}}, "from 1 to 50"},
		{url.Values{"q": {"echo"}, "user": {"alice"}, "limit": {"51"}}, "from 1 to 50"},
		{url.Values{"q": {strings.Repeat("x", 1025)}, "user": {"alice"}}, "longer than 1024 bytes"},
		{url.Values{"q": {"?!"}, "user": {"alice"}}, "no word"},
	} {
		if code, body := get(tc.query); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%v: %d %s, want 400 saying %q", tc.query, code, body, tc.want)
		}
	}
}
