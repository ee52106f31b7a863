package mcpmux_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// disabledSays is the refusal every surface gives for connector off.
const disabledSays = "connector off is disabled by an admin"

// TestDisabledConnector checks a connector an admin disabled, in both
// eras: its tools, resources and prompts leave every list, the built-in
// list of connectors included; its calls, reads, prompts and own
// endpoint are refused with the reason; its status says disabled; and
// neither its credential nor its upstream is ever asked.
func TestDisabledConnector(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a", "off")
	conns[1].Disabled = true
	var asked atomic.Int64
	static := mcpmux.Static(conns)
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
		o.Credentials = func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
			if req.Connector.ID == "off" {
				asked.Add(1)
			}
			return static(ctx, req)
		}
	})
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			lists := map[string][]string{
				"tools":     listed(t, c.result("tools/list", nil), "tools", "name"),
				"resources": listed(t, c.result("resources/list", nil), "resources", "uri"),
				"templates": listed(t, c.result("resources/templates/list", nil), "resourceTemplates", "uriTemplate"),
				"prompts":   listed(t, c.result("prompts/list", nil), "prompts", "name"),
			}
			for kind, names := range lists {
				if len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "off") }) {
					t.Errorf("%s = %v: want a's and none of off's", kind, names)
				}
			}
			// A tool call is a tool error the model reads; the others are
			// JSON-RPC errors; each says why.
			call := c.call("tools/call", map[string]any{"name": "off_echo", "arguments": map[string]any{"message": "hi"}})
			if call.result == nil || textOf(t, call.result) != disabledSays || !strings.Contains(string(call.result), `"isError":true`) {
				t.Errorf("off_echo answered %s, want a tool error saying %q", call.body, disabledSays)
			}
			for _, r := range []*rawReply{
				c.call("prompts/get", map[string]any{"name": "off_greet", "arguments": map[string]any{"who": "x"}}),
				c.call("resources/read", map[string]any{"uri": "mcpgate://off/test://off/readme"}),
			} {
				if r.err == nil || r.err.Message != disabledSays {
					t.Errorf("a request to off answered %s, want %q", r.body, disabledSays)
				}
			}
			if r := c.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}}); r.result == nil {
				t.Errorf("a's tool: %s", r.body)
			}
			builtin := string(c.result("tools/call", map[string]any{"name": "mcpgate_list_connectors", "arguments": map[string]any{}}))
			if strings.Contains(builtin, `"off"`) || !strings.Contains(builtin, `"a"`) {
				t.Errorf("mcpgate_list_connectors = %s: want a alone", builtin)
			}
			own := newRaw(t, g.URL+"/connectors/off/mcp", agentHeader("alice", ""))
			own.version = era.version
			if r := own.call("tools/list", nil); r.status != 403 || !strings.Contains(string(r.body), disabledSays) {
				t.Errorf("off's own endpoint: HTTP %d %s, want 403 saying why", r.status, r.body)
			}
		})
	}
	var statuses [][3]string
	for _, s := range g.mux.Statuses(context.Background(), grants.Caller{ID: "alice"}) {
		statuses = append(statuses, [3]string{s.ID, s.Status, s.Reason})
	}
	want := [][3]string{{"a", mcpmux.StatusReady, ""}, {"off", mcpmux.StatusDisabled, disabledSays}}
	if !slices.Equal(statuses, want) {
		t.Errorf("statuses = %q, want %q", statuses, want)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the credential of off was asked %d times", n)
	}
	if reqs := ups["off"].Requests(); len(reqs) != 0 {
		t.Errorf("off's upstream got %d requests, want none", len(reqs))
	}
}

// TestDisabledHidden checks that a caller with no grant of a disabled
// connector learns nothing of it: its own endpoint is 404, as for a
// connector that does not exist, not the disabled refusal.
func TestDisabledHidden(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "off")
	conns[1].Disabled = true
	g := startGateway(t, conns, []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"a"}}})
	c := newRaw(t, g.URL+"/connectors/off/mcp", agentHeader("alice", ""))
	c.version = v20260728
	if r := c.call("tools/list", nil); r.status != 404 || strings.Contains(string(r.body), "disabled") {
		t.Errorf("off's endpoint to a caller without a grant: HTTP %d %s, want 404", r.status, r.body)
	}
	a := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
	if r := a.call("tools/call", map[string]any{"name": "off_echo", "arguments": map[string]any{}}); !notGranted(r) {
		t.Errorf("off_echo to a caller without a grant: %s, want not granted", r.body)
	}
}
