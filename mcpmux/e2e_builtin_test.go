package mcpmux_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestListConnectors checks the gateway's own tool: listed on /mcp to a
// caller who can see a connector and to no one else, never on a
// connector's endpoint, and answering with exactly the caller's
// connectors and their status.
func TestListConnectors(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a", "b", "dead")
	for _, c := range conns {
		c.Timeout = 500 * time.Millisecond
	}
	ups["dead"].Kill()
	none := []string{"a/none"}
	g := startGateway(t, conns, []grants.Rule{
		{Sources: []string{"user:alice"}, Connectors: []string{"a", "dead"}},
		{Sources: []string{"user:bob"}, Tools: []string{"b/echo"}},
		// carol sees a and b and may use nothing of either.
		{Sources: []string{"user:carol"}, Connectors: []string{"b"}, Tools: none, Resources: none, Templates: none, Prompts: none},
	})
	type status struct{ ID, Status, MCP string }
	tests := []struct {
		user string
		want []status // nil: no connectors, no tool
	}{
		{"alice", []status{{"a", mcpmux.StatusReady, "/connectors/a/mcp"}, {"dead", mcpmux.StatusFailed, "/connectors/dead/mcp"}}},
		{"bob", []status{{"b", mcpmux.StatusReady, "/connectors/b/mcp"}}},
		{"carol", []status{{"a", mcpmux.StatusNoAccess, "/connectors/a/mcp"}, {"b", mcpmux.StatusNoAccess, "/connectors/b/mcp"}}},
		{"dave", nil},
	}
	for _, era := range rawEras {
		for _, tt := range tests {
			t.Run(era.Name+"/"+tt.user, func(t *testing.T) {
				c := dialRaw(t, g.URL+"/mcp", agentHeader(tt.user, ""), era.version)
				tools := listed(t, c.result("tools/list", nil), "tools", "name")
				if slices.Contains(tools, "mcpgate_list_connectors") != (tt.want != nil) {
					t.Fatalf("tools = %v", tools)
				}
				r := c.call("tools/call", map[string]any{"name": "mcpgate_list_connectors", "arguments": map[string]any{}})
				if tt.want == nil {
					if !notGranted(r) {
						t.Errorf("a caller who sees no connector called the tool: %s", r.body)
					}
					return
				}
				var res struct {
					Content []struct {
						Type, Text string
					} `json:"content"`
					Structured struct {
						Connectors []struct {
							ID, Status, Reason, MCP string
						} `json:"connectors"`
					} `json:"structuredContent"`
				}
				if r.result == nil {
					t.Fatalf("call: %s", r.body)
				}
				decodeInto(t, r.result, &res)
				var got []status
				for _, s := range res.Structured.Connectors {
					got = append(got, status{s.ID, s.Status, s.MCP})
					if (s.Status == mcpmux.StatusFailed) != (s.Reason != "") {
						t.Errorf("%s: status %s with reason %q", s.ID, s.Status, s.Reason)
					}
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("connectors = %+v, want %+v", got, tt.want)
				}
				// The text content is the same data, for agents that read
				// only text.
				structured, _ := json.Marshal(decode(t, jsonMember(t, r.result, "structuredContent")))
				if len(res.Content) != 1 || !sameJSON(t, []byte(res.Content[0].Text), structured) {
					t.Errorf("text content %+v does not match %s", res.Content, structured)
				}

				for _, s := range tt.want {
					one := dialRaw(t, g.URL+s.MCP, agentHeader(tt.user, ""), era.version)
					if slices.Contains(listed(t, one.result("tools/list", nil), "tools", "name"), "mcpgate_list_connectors") {
						t.Errorf("%s lists the built-in tool", s.MCP)
					}
					// A connector's own endpoint never answers the built-in
					// tool; one that is down fails the call in its own way.
					r := one.call("tools/call", map[string]any{"name": "mcpgate_list_connectors"})
					if r.result != nil || (!notGranted(r) && s.Status != mcpmux.StatusFailed) {
						t.Errorf("%s answers the built-in tool: %s", s.MCP, r.body)
					}
				}
			})
		}
	}
}

// jsonMember returns one member of a JSON object.
func jsonMember(t testing.TB, raw []byte, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	decodeInto(t, raw, &m)
	return m[name]
}
