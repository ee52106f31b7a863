package mcpmux_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	calls    []mcpmux.ToolCall
	requests []mcpmux.UpstreamRequest
}

func (r *recorder) ToolCall(c mcpmux.ToolCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.Arguments = bytes.Clone(c.Arguments) // a test may keep them; the gateway may not
	r.calls = append(r.calls, c)
}

func (r *recorder) UpstreamRequest(u mcpmux.UpstreamRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, u)
}

// last returns the last tool call reported.
func (r *recorder) last(t *testing.T) mcpmux.ToolCall {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		t.Fatal("no tool call was reported")
	}
	return r.calls[len(r.calls)-1]
}

// upstream returns the upstream requests reported for connector.
func (r *recorder) upstream(connector string) []mcpmux.UpstreamRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []mcpmux.UpstreamRequest
	for _, u := range r.requests {
		if u.Connector == connector {
			out = append(out, u)
		}
	}
	return out
}

// TestObserverToolCalls checks what the Observer learns of each kind of
// tools/call, in both eras: who called which tool of which connector,
// whether the grants allowed it, how it ended, and its raw arguments.
func TestObserverToolCalls(t *testing.T) {
	t.Parallel()
	rules := []grants.Rule{
		{Sources: []string{"user:alice"}, Connectors: []string{"*"}},
		{Sources: []string{"user:bob"}, Tools: []string{"a/echo"}},
	}
	tests := []struct {
		name      string
		user      string
		params    map[string]any
		connector string
		tool      string
		granted   bool
		outcome   mcpmux.Outcome
		err       bool
	}{
		{"ok", "alice", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "observed-canary"}},
			"a", "echo", true, mcpmux.OutcomeOK, false},
		{"tool error", "alice", map[string]any{"name": "a_fail", "arguments": map[string]any{}},
			"a", "fail", true, mcpmux.OutcomeToolError, false},
		{"built-in", "alice", map[string]any{"name": "mcpgate_list_connectors"},
			"mcpgate", "mcpgate_list_connectors", true, mcpmux.OutcomeOK, false},
		{"no such tool", "alice", map[string]any{"name": "a_nosuch"},
			"a", "a_nosuch", false, mcpmux.OutcomeDenied, false},
		{"no such connector", "alice", map[string]any{"name": "zzz_echo"},
			"", "zzz_echo", false, mcpmux.OutcomeDenied, false},
		{"not granted", "bob", map[string]any{"name": "a_fail"},
			"a", "a_fail", false, mcpmux.OutcomeDenied, false},
		{"unreachable", "alice", map[string]any{"name": "dead_echo", "arguments": map[string]any{"message": "x"}},
			"dead", "dead_echo", false, mcpmux.OutcomeUpstreamError, true},
		// A 2026-07-28 request this malformed fails its Mcp-Name header
		// check before it is a tool call.
		{"malformed", "alice", map[string]any{"name": 42},
			"", "", false, mcpmux.OutcomeInvalid, false},
	}
	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			t.Parallel()
			ups, conns := startUpstreams(t, testupstream.BothEras, "a", "dead")
			for _, c := range conns {
				c.Timeout = time.Second
			}
			ups["dead"].Kill()
			rec := new(recorder)
			g := startGateway(t, conns, rules, func(o *mcpmux.Options) { o.Observer = rec })
			for _, tc := range tests {
				if tc.outcome == mcpmux.OutcomeInvalid && era.version == v20260728 {
					continue
				}
				c := dialRaw(t, g.URL+"/mcp", agentHeader(tc.user, ""), era.version)
				c.call("tools/call", tc.params)
				got := rec.last(t)
				if got.Caller != tc.user || got.Connector != tc.connector || got.Tool != tc.tool || got.Granted != tc.granted ||
					got.Outcome != tc.outcome || (got.Err != nil) != tc.err || got.Duration <= 0 {
					t.Errorf("%s: reported %+v", tc.name, got)
				}
			}
			ok := rec.calls[0]
			if !bytes.Contains(ok.Arguments, []byte("observed-canary")) {
				t.Errorf("the arguments reported are %s", ok.Arguments)
			}
			calls := 0
			for _, u := range rec.upstream("a") {
				if u.Duration <= 0 || u.Err != nil {
					t.Errorf("upstream request %+v", u)
				}
				if u.Method == "tools/call" {
					calls++
				}
			}
			if calls != 2 {
				t.Errorf("%d upstream tools/call requests reported for a, want 2 (echo and fail)", calls)
			}
			dead := rec.upstream("dead")
			if len(dead) == 0 || slices.ContainsFunc(dead, func(u mcpmux.UpstreamRequest) bool { return u.Err == nil }) {
				t.Errorf("upstream requests to the dead connector: %+v", dead)
			}
		})
	}
}

// TestObserverNeedsAuth checks that a call to a connector that needs
// consent is reported as such, with the consent as its reason.
func TestObserverNeedsAuth(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	var consented atomic.Bool
	rec := new(recorder)
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
		o.Credentials = consentGate(&consented)
		o.Observer = rec
	})
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	c.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}})
	got := rec.last(t)
	var cr *mcpmux.ConsentRequired
	if got.Outcome != mcpmux.OutcomeNeedsAuth || got.Connector != "a" || got.Granted || !errors.As(got.Err, &cr) {
		t.Errorf("before consent: %+v", got)
	}
	consented.Store(true)
	c.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}})
	if got := rec.last(t); got.Outcome != mcpmux.OutcomeOK || !got.Granted || got.Tool != "echo" {
		t.Errorf("after consent: %+v", got)
	}
}

// discard is an Observer that does nothing, for measuring what telling
// one costs the gateway itself.
type discard struct{}

func (discard) ToolCall(mcpmux.ToolCall)               {}
func (discard) UpstreamRequest(mcpmux.UpstreamRequest) {}

// BenchmarkToolsCallGatewayObserved is BenchmarkToolsCallGateway with an
// Observer that does nothing.
func BenchmarkToolsCallGatewayObserved(b *testing.B) {
	up := benchUpstream(b, "bench")
	g := startGateway(b, []*connectors.Connector{testConnector(b, "bench", up, connectors.Auth{})}, benchGrant,
		func(o *mcpmux.Options) { o.Observer = discard{} })
	benchParallel(b, g.URL+"/mcp", "tools/call", `{"name":"bench_echo",`+benchEcho+`}`)
}
