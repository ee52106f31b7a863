package mcpmux_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// The ready answers a list is served from (aggregate.go) are kept per
// view; these tests check each change that must retire one: a caller's
// credentials (a consent given, a disconnect, a new grant), a failed
// call, and a reload's new grants and disabled connector. list_changed
// and the TTL are TestListChanged's and TestListCache's: a fetch that
// lands retires the answers made before it.

// grantSource is a per-user credential source, as OAuth is: a user has a
// credential at connector "a" only once a grant is set for them, and each
// grant has its own key, which the upstream sees in X-Grant. Other
// connectors' credentials are static.
type grantSource struct {
	mu     sync.Mutex
	grants map[string]string // user → grant
}

func (s *grantSource) set(user, grant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[user] = grant
}

func (s *grantSource) credentials(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
	if req.Connector.ID != "a" {
		return mcpmux.StaticCredentials(ctx, req)
	}
	s.mu.Lock()
	grant := s.grants[req.Caller.ID]
	s.mu.Unlock()
	if grant == "" {
		return mcpmux.Credential{}, &mcpmux.ConsentRequired{Connector: "a", Status: mcpmux.StatusNeedsAuth,
			URL: connectURL, Message: "Connector a needs your consent."}
	}
	return mcpmux.Credential{Key: "grant:" + grant, Header: http.Header{
		"Authorization": {"Bearer " + upstreamAuth}, "X-Grant": {grant}}}, nil
}

// listsWith counts the tools/list requests up received with grant.
func listsWith(up *testupstream.Server, grant string) int {
	n := 0
	for _, r := range up.Requests() {
		if r.Header.Get("X-Grant") == grant && strings.Contains(string(r.Body), `"tools/list"`) {
			n++
		}
	}
	return n
}

// TestReadyListCredentials checks that callers under the same grant rules,
// who share a view, never share an answer made with another's credentials:
// a caller without consent gets none of a's tools from an answer made for
// one with it; a consent, a disconnect and a new grant show on the very
// next list, with no notice needed; and an unchanged caller is answered
// from the ready answer, without asking the upstream again.
func TestReadyListCredentials(t *testing.T) {
	t.Parallel()
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			t.Parallel()
			ups, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
			src := &grantSource{grants: map[string]string{"alice": "alice-1"}}
			g := startGateway(t, conns, everyone, func(o *mcpmux.Options) { o.Credentials = src.credentials })
			alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), era.version)
			tools := func(c *rawClient) []string { return listed(t, c.result("tools/list", nil), "tools", "name") }

			if got := tools(alice); !slices.Contains(got, "a_echo") || !slices.Contains(got, "b_echo") {
				t.Fatalf("alice, consented, lists %v", got)
			}
			// Again, from the ready answer: the first was made while the
			// lists it fetched landed, which retired it.
			tools(alice)
			if got := tools(bob); slices.Contains(got, "a_echo") || !slices.Contains(got, "b_echo") {
				t.Fatalf("bob, who never consented to a, lists %v", got)
			}
			src.set("bob", "bob-1")
			if got := tools(bob); !slices.Contains(got, "a_echo") {
				t.Fatalf("bob, just consented, lists %v", got)
			}
			if n := listsWith(ups["a"], "bob-1"); n != 1 {
				t.Errorf("a listed %d times with bob's grant, want once: bob's answer is made of his own lists", n)
			}
			tools(alice)
			if n := listsWith(ups["a"], "alice-1"); n != 1 {
				t.Errorf("a listed %d times with alice's grant, want once: her answer is ready", n)
			}
			src.set("alice", "")
			if got := tools(alice); slices.Contains(got, "a_echo") || !slices.Contains(got, "b_echo") {
				t.Errorf("alice, disconnected, lists %v", got)
			}
			src.set("alice", "alice-2")
			if got := tools(alice); !slices.Contains(got, "a_echo") {
				t.Errorf("alice, consented again, lists %v", got)
			}
			if n := listsWith(ups["a"], "alice-2"); n != 1 {
				t.Errorf("a listed %d times with alice's new grant, want once", n)
			}
		})
	}
}

// TestReadyListAfterFailedCall checks that a call the upstream fails
// (here, it outlasts the connector's timeout) retires the ready answer at
// once: the next list asks the upstream again rather than wait for the
// TTL. Nothing else fetches the list meanwhile: a failed call marks it
// stale and leaves the fetch to the next list.
func TestReadyListAfterFailedCall(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	c := testConnector(t, "a", up, bearer)
	// Long enough that no list on a loaded machine outlasts it; the
	// delay below outlasts it for sure.
	c.Timeout = time.Second
	g := startGateway(t, []*connectors.Connector{c}, everyone)
	alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	alice.result("tools/list", nil)
	alice.result("tools/list", nil)
	if n := countMethod(up, "tools/list"); n != 1 {
		t.Fatalf("the upstream saw %d tools/list, want 1", n)
	}
	up.SetDelay(2 * c.Timeout)
	if r := alice.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}}); r.result != nil && !strings.Contains(string(r.result), `"isError":true`) {
		t.Fatalf("a call past the connector's timeout succeeded: %s", r.body)
	}
	up.SetDelay(0)
	if got := listed(t, alice.result("tools/list", nil), "tools", "name"); !slices.Contains(got, "a_echo") {
		t.Errorf("after the failed call, tools = %v", got)
	}
	if n := countMethod(up, "tools/list"); n != 2 {
		t.Errorf("after the failed call the upstream saw %d tools/list, want 2: the list was not asked for again", n)
	}
}

// TestReadyListDeadUpstream checks that the tools of an upstream that
// died go from the list as soon as a call to it fails.
func TestReadyListDeadUpstream(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	g := startGateway(t, conns, everyone)
	alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	if got := listed(t, alice.result("tools/list", nil), "tools", "name"); !slices.Contains(got, "a_echo") {
		t.Fatalf("tools = %v", got)
	}
	ups["a"].Close()
	if r := alice.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}}); r.result != nil && !strings.Contains(string(r.result), `"isError":true`) {
		t.Fatalf("a call to a closed upstream succeeded: %s", r.body)
	}
	got := listed(t, alice.result("tools/list", nil), "tools", "name")
	if slices.Contains(got, "a_echo") || !slices.Contains(got, "b_echo") {
		t.Errorf("after a's call failed, tools = %v", got)
	}
}

// TestReadyListReload checks that a reload, which builds a new Mux, is
// answered by the new grants and connectors from its first list: the
// ready answers are the Mux's own, never handed over.
func TestReadyListReload(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "b")
	var live atomic.Pointer[mcpmux.Mux]
	srv := newSwitchServer(t, &live)
	live.Store(startGateway(t, conns, everyone).mux)
	agent := dialRaw(t, srv+"/mcp", agentHeader("alice", ""), v20260728)
	if got := listed(t, agent.result("tools/list", nil), "tools", "name"); !slices.Contains(got, "b_echo") {
		t.Fatalf("tools = %v", got)
	}
	// The reload: b disabled, and alice granted a's echo only.
	disabled := *conns[1]
	disabled.Disabled = true
	second := startGateway(t, []*connectors.Connector{conns[0], &disabled},
		[]grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"a/echo"}}}).mux
	live.Store(second)
	second.Reloaded()
	if got := listed(t, agent.result("tools/list", nil), "tools", "name"); !slices.Equal(got, []string{"a_echo", "mcpgate_list_connectors"}) {
		t.Errorf("after the reload, tools = %v", got)
	}
}

// newSwitchServer serves whichever Mux live holds, as the gateway serves
// its current generation, and returns its URL.
func newSwitchServer(t *testing.T, live *atomic.Pointer[mcpmux.Mux]) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		live.Load().ServeMCP(w, r, grants.Caller{ID: r.Header.Get("X-Test-User")}, "")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDefaultPageSize checks that by default a caller's whole view is one
// page, even past the 500 tools a page once held: an agent gets its list
// in one round trip.
func TestDefaultPageSize(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", ExtraTools: 600})
	g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, connectors.Auth{})}, everyone)
	res := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125).result("tools/list", nil)
	if got := listed(t, res, "tools", "name"); len(got) != 9+600+1 {
		t.Errorf("one page holds %d tools, want all %d", len(got), 9+600+1)
	}
	if strings.Contains(string(res), "nextCursor") {
		t.Error("the list has a nextCursor: the view is not one page")
	}
}
