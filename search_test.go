package mcpgate

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// The tool search test's own Caddy ports, apart from the other tests'.
const (
	searchAdmin     = "localhost:2990"
	searchSite      = "http://127.0.0.1:9085" // tool_search on in its block
	searchPlainSite = "http://127.0.0.1:9086" // plain mcpgate: the global off
)

// startSearchCaddy runs a real Caddy whose global mcpgate block turns tool
// search off, with two sites: searchSite turns it on in its mcpgate block
// and searchPlainSite has a plain mcpgate. alice is granted srch's echo
// and whoami only; the caller is named by the X-User header.
func startSearchCaddy(t *testing.T, up *testupstream.Server) {
	t.Helper()
	// The admin endpoint on our port, in this process, whatever config an
	// earlier test left running.
	if err := caddy.Load([]byte(`{"admin":{"listen":"`+searchAdmin+`"}}`), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"`+searchAdmin+`"}}`), true) })
	config := fmt.Sprintf(`{
	admin %s
	http_port 9085
	https_port 9447
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
		identity {http.request.header.X-User}
		tool_search off
		connector srch {
			url %s
			auth bearer {env.SRCH_TOKEN}
			timeout 5s
		}
		grant {
			src user:alice
			tools srch/echo srch/whoami
		}
	}
}
%s {
	mcpgate {
		tool_search on
	}
}
%s {
	mcpgate
}
`, searchAdmin, up.URL, searchSite, searchPlainSite)
	sitetest.NewTester(t, 2990).InitServer(config, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
}

// searchFor calls mcpgate_search_tools through c and returns the names it
// found.
func searchFor(t *testing.T, c *client.Client, query string) []string {
	t.Helper()
	res, err := agenttest.Call(c, "mcpgate_search_tools", map[string]any{"query": query, "limit": 50})
	if err != nil || res.IsError {
		t.Fatalf("search %q: %+v, %v", query, res, err)
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var found struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	if err := json.Unmarshal(raw, &found); err != nil {
		t.Fatalf("search %q: structured content %s: %v", query, raw, err)
	}
	var names []string
	for _, tool := range found.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// TestToolSearchSites checks, through a real Caddy and a real client,
// that the handler carries each site's tool_search to the gateway: the
// site that turns it on lists the search tools in place of the upstream's,
// its search finds a granted tool and never an ungranted one (which the
// catalog holds), and mcpgate_call_tool answers with the upstream's
// result; the site with a plain mcpgate, under the global off, lists the
// granted tools as usual and has no search tools.
func TestToolSearchSites(t *testing.T) {
	const token = "srch-upstream-token-7a1c"
	up := testupstream.StartT(t, testupstream.Options{Name: "srch", BearerToken: token})
	t.Setenv("SRCH_TOKEN", token)
	startSearchCaddy(t, up)
	alice := map[string]string{"X-User": "alice"}

	for _, era := range agenttest.Eras {
		t.Run("on/"+era.Name, func(t *testing.T) {
			c := agenttest.Dial(t, searchSite+"/mcp", alice, era.Opts...)
			names := agenttest.ToolNames(t, c)
			if !slices.Contains(names, "mcpgate_search_tools") || !slices.Contains(names, "mcpgate_call_tool") || slices.Contains(names, "srch_echo") || slices.Contains(names, "srch_whoami") {
				t.Errorf("tools/list in search mode = %v, want the search tools and no upstream tool", names)
			}
			if got := searchFor(t, c, "credentials it was called with"); len(got) == 0 || got[0] != "srch_whoami" {
				t.Errorf("search for whoami = %v, want srch_whoami first", got)
			}
			// delete_everything is in srch's list, which was fetched for
			// alice, and not granted to her.
			for _, q := range []string{"delete everything", "delete_everything", "srch_delete_everything"} {
				if got := searchFor(t, c, q); slices.Contains(got, "srch_delete_everything") {
					t.Errorf("search %q = %v: an ungranted tool was found", q, got)
				}
			}
			res, err := agenttest.Call(c, "mcpgate_call_tool", map[string]any{"name": "srch_echo", "arguments": map[string]any{"message": "found by search"}})
			if err != nil || res.IsError || len(res.Content) != 1 || mcp.GetTextFromContent(res.Content[0]) != "found by search" {
				t.Errorf("mcpgate_call_tool srch_echo: %+v, %v", res, err)
			}
			res, err = agenttest.Call(c, "mcpgate_call_tool", map[string]any{"name": "srch_delete_everything", "arguments": map[string]any{}})
			if err == nil && !res.IsError {
				t.Errorf("mcpgate_call_tool of an ungranted tool answered %+v", res)
			}
		})
		t.Run("plain/"+era.Name, func(t *testing.T) {
			c := agenttest.Dial(t, searchPlainSite+"/mcp", alice, era.Opts...)
			names := agenttest.ToolNames(t, c)
			if !slices.Contains(names, "srch_echo") || !slices.Contains(names, "srch_whoami") || slices.Contains(names, "srch_delete_everything") {
				t.Errorf("tools/list with search off = %v, want alice's granted tools", names)
			}
			if slices.Contains(names, "mcpgate_search_tools") || slices.Contains(names, "mcpgate_call_tool") {
				t.Errorf("tools/list with search off = %v, lists the search tools", names)
			}
			if res, err := agenttest.Call(c, "mcpgate_search_tools", map[string]any{"query": "echo"}); err == nil && !res.IsError {
				t.Errorf("mcpgate_search_tools with search off answered %+v", res)
			}
		})
	}
}
