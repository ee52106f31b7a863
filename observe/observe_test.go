package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// canary is in the arguments of tool calls: no event may hold it.
const canary = "observe-canary-81c2f7"

// newObserver returns an Observer logging to the returned lines, with its
// audit ring in a store in memory, closed when the test ends.
func newObserver(t *testing.T, manager func() (StateCounter, error)) (*Observer, *observer.ObservedLogs) {
	t.Helper()
	core, lines := observer.New(zap.DebugLevel)
	o, err := New(zap.New(core), manager)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	if err := o.AttachStore(store.NewMemory(), bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	return o, lines
}

// events returns the audit events of o, newest first.
func events(t *testing.T, o *Observer) []audit.Event {
	t.Helper()
	out, err := o.Query(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestToolCall checks that each tool call is counted by connector and
// outcome ("none" for a name that names no connector) and audited with
// the grants' decision, the gateway's reason, and the arguments only as
// a hash.
func TestToolCall(t *testing.T) {
	args := json.RawMessage(`{"message":"` + canary + `"}`)
	for _, tc := range []struct {
		name     string
		call     mcpmux.ToolCall
		label    string
		decision string
		detail   string
	}{
		{"allowed", mcpmux.ToolCall{Caller: "alice", Connector: "obsa", Tool: "echo", Granted: true,
			Outcome: mcpmux.OutcomeOK, Duration: time.Millisecond}, "obsa", audit.DecisionAllow, ""},
		{"denied", mcpmux.ToolCall{Caller: "bob", Connector: "obsa", Tool: "obsa_echo",
			Outcome: mcpmux.OutcomeDenied}, "obsa", audit.DecisionDeny, ""},
		{"needs auth", mcpmux.ToolCall{Caller: "carol", Connector: "obsb", Tool: "notes",
			Outcome: mcpmux.OutcomeNeedsAuth, Err: errors.New("no credential yet")}, "obsb", "", "no credential yet"},
		{"no connector", mcpmux.ToolCall{Caller: "dave", Tool: "nosuch_tool",
			Outcome: mcpmux.OutcomeInvalid}, "none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := newObserver(t, nil)
			counter := metrics.toolCalls.WithLabelValues(tc.label, string(tc.call.Outcome))
			before := testutil.ToFloat64(counter)
			tc.call.Arguments = args
			o.ToolCall(tc.call)
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("the counter of %s/%s grew by %v, want 1", tc.label, tc.call.Outcome, got)
			}
			got := events(t, o)
			if len(got) != 1 {
				t.Fatalf("events: %+v", got)
			}
			e := got[0]
			if e.Kind != audit.KindToolCall || e.User != tc.call.Caller || e.Connector != tc.call.Connector ||
				e.Tool != tc.call.Tool || e.Outcome != string(tc.call.Outcome) || e.Decision != tc.decision ||
				e.Detail != tc.detail || e.Duration != tc.call.Duration || len(e.ArgsHash) != 32 {
				t.Errorf("event: %+v", e)
			}
			if raw, _ := json.Marshal(e); strings.Contains(string(raw), canary) {
				t.Errorf("the event holds the arguments: %s", raw)
			}
		})
	}
}

// TestUpstreamRequest checks that an upstream request's duration goes to
// its connector's histogram, with the default buckets.
func TestUpstreamRequest(t *testing.T) {
	o, _ := newObserver(t, nil)
	// A connector of its own, since the histograms live as long as the
	// process.
	connector := fmt.Sprintf("obs-%d", time.Now().UnixNano())
	o.UpstreamRequest(mcpmux.UpstreamRequest{Connector: connector, Method: "tools/call", Duration: 30 * time.Millisecond})
	want := `# HELP mcpgate_upstream_request_duration_seconds Time from sending a request to an upstream MCP server to having read its answer, by connector.
# TYPE mcpgate_upstream_request_duration_seconds histogram
`
	for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
		n := 1
		if le == "0.005" || le == "0.01" || le == "0.025" {
			n = 0
		}
		want += fmt.Sprintf("mcpgate_upstream_request_duration_seconds_bucket{connector=%q,le=%q} %d\n", connector, le, n)
	}
	want += fmt.Sprintf("mcpgate_upstream_request_duration_seconds_sum{connector=%q} 0.03\n", connector)
	want += fmt.Sprintf("mcpgate_upstream_request_duration_seconds_count{connector=%q} 1\n", connector)
	h := metrics.upstream.WithLabelValues(connector).(prometheus.Histogram)
	if err := testutil.CollectAndCompare(h, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestOAuthEvent checks that every refresh is counted by connector and
// outcome, that a refresh that worked is not audited while a failed one
// is, and that the other OAuth events are audited under their kinds.
func TestOAuthEvent(t *testing.T) {
	o, _ := newObserver(t, nil)
	refreshes := func(outcome string) float64 {
		return testutil.ToFloat64(metrics.refreshes.WithLabelValues("obsoauth", outcome))
	}
	okBefore, failedBefore := refreshes(oauthflow.OutcomeOK), refreshes(oauthflow.OutcomeFailed)
	for _, e := range []oauthflow.Event{
		{Kind: oauthflow.EventConsentStart, Connector: "obsoauth", User: "alice", Outcome: audit.OutcomeOK},
		{Kind: oauthflow.EventConsentFinish, Connector: "obsoauth", User: "alice", Outcome: audit.OutcomeOK},
		{Kind: oauthflow.EventRefresh, Connector: "obsoauth", User: "alice", Outcome: oauthflow.OutcomeOK},
		{Kind: oauthflow.EventRefresh, Connector: "obsoauth", User: "alice", Outcome: oauthflow.OutcomeFailed, Detail: "the server said no"},
		{Kind: oauthflow.EventDisconnect, Connector: "obsoauth", User: "alice", Outcome: audit.OutcomeOK},
		{Kind: oauthflow.EventRevocation, Connector: "obsoauth", User: "alice", Outcome: oauthflow.OutcomeRevoked},
		{Kind: "not_a_kind", Connector: "obsoauth", User: "alice", Outcome: audit.OutcomeOK},
	} {
		o.OAuthEvent(e)
	}
	if n := refreshes(oauthflow.OutcomeOK) - okBefore; n != 1 {
		t.Errorf("refreshes that worked grew by %v, want 1", n)
	}
	if n := refreshes(oauthflow.OutcomeFailed) - failedBefore; n != 1 {
		t.Errorf("failed refreshes grew by %v, want 1", n)
	}
	var got []string
	for _, e := range events(t, o) {
		if e.User != "alice" || e.Connector != "obsoauth" {
			t.Errorf("event: %+v", e)
		}
		got = append(got, string(e.Kind)+" "+e.Outcome+" "+e.Detail)
	}
	want := []string{"revocation revoked ", "disconnect ok ", "refresh_failure failed the server said no",
		"consent_finish ok ", "consent_start ok "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestAdminChange checks an admin's change is audited as one.
func TestAdminChange(t *testing.T) {
	o, _ := newObserver(t, nil)
	o.AdminChange("alice", "obsa", "disconnected")
	got := events(t, o)
	if len(got) != 1 || got[0].Kind != audit.KindAdminChange || got[0].User != "alice" || got[0].Connector != "obsa" ||
		got[0].Outcome != audit.OutcomeOK || got[0].Detail != "disconnected" {
		t.Errorf("events: %+v", got)
	}
}

// TestAttachStore checks that events go to the store once attached, and
// that Close writes them there; tool arguments hash under the key given.
func TestAttachStore(t *testing.T) {
	o, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.ToolCall(mcpmux.ToolCall{Caller: "alice", Connector: "obsa", Tool: "echo", Outcome: mcpmux.OutcomeOK,
		Arguments: json.RawMessage(`{}`)})
	if got := events(t, o); len(got) != 1 || got[0].ArgsHash != "" {
		t.Errorf("before the store, without a key: %+v", got)
	}
	db := store.NewMemory()
	key := bytes.Repeat([]byte{9}, 32)
	if err := o.AttachStore(db, key); err != nil {
		t.Fatal(err)
	}
	o.ToolCall(mcpmux.ToolCall{Caller: "alice", Connector: "obsa", Tool: "echo", Outcome: mcpmux.OutcomeOK,
		Arguments: json.RawMessage(`{}`)})
	got := events(t, o)
	if len(got) != 1 || got[0].ArgsHash != audit.ArgsHash(key, []byte(`{}`)) {
		t.Errorf("after the store: %+v", got)
	}
	o.Close()
	keys, err := db.List(context.Background(), audit.Prefix)
	if err != nil || len(keys) != 1 {
		t.Errorf("the store holds %q, %v", keys, err)
	}
}

// states is a StateCounter with fixed answers.
type states struct {
	counts map[connectors.State]int
	err    error
}

// States implements StateCounter.
func (s states) States(context.Context) (map[connectors.State]int, error) { return s.counts, s.err }

// TestCollect checks the metrics read at scrape time: the audit ring's
// drops always, and the connections by state, every state reported, zero
// included, when there is an OAuth manager; none when there is none, or
// when it cannot count them (which is logged).
func TestCollect(t *testing.T) {
	const dropped = `# HELP mcpgate_audit_dropped_total Audit events logged but left out of the audit ring because its store fell behind.
# TYPE mcpgate_audit_dropped_total counter
mcpgate_audit_dropped_total 0
`
	const connections = `# HELP mcpgate_connections OAuth connections (one per connector and user, or per shared connector) by state.
# TYPE mcpgate_connections gauge
mcpgate_connections{state="active"} 2
mcpgate_connections{state="disconnected"} 0
mcpgate_connections{state="error"} 1
mcpgate_connections{state="expired"} 0
mcpgate_connections{state="misconfigured"} 3
mcpgate_connections{state="pending"} 0
mcpgate_connections{state="reauth_required"} 0
`
	counted := states{counts: map[connectors.State]int{connectors.StateActive: 2, connectors.StateError: 1, connectors.StateMisconfigured: 3}}
	for _, tc := range []struct {
		name    string
		manager func() (StateCounter, error)
		want    string
		logged  int
	}{
		{"no manager", nil, dropped, 0},
		{"no OAuth", func() (StateCounter, error) { return nil, errors.New("no connector uses OAuth") }, dropped, 0},
		{"counted", func() (StateCounter, error) { return counted, nil }, dropped + connections, 0},
		{"count failed", func() (StateCounter, error) { return states{err: errors.New("store closed")}, nil }, dropped, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, lines := newObserver(t, tc.manager)
			if err := testutil.CollectAndCompare(o, strings.NewReader(tc.want)); err != nil {
				t.Error(err)
			}
			if n := lines.FilterMessage("counting the OAuth connections for metrics").Len(); n != tc.logged {
				t.Errorf("%d error lines, want %d", n, tc.logged)
			}
		})
	}
}

// TestCollectors checks what a host registers: the process-wide vectors,
// the search metrics and the Observer, by their names, help and types, consistent
// with what they describe.
func TestCollectors(t *testing.T) {
	o, _ := newObserver(t, func() (StateCounter, error) { return states{counts: nil}, nil })
	reg := prometheus.NewPedanticRegistry()
	for _, c := range o.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	metrics.toolCalls.WithLabelValues("obsa", "ok")
	metrics.upstream.WithLabelValues("obsa")
	metrics.refreshes.WithLabelValues("obsa", "ok")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		got = append(got, f.GetName()+" "+f.GetType().String()+" "+f.GetHelp())
	}
	want := []string{
		"mcpgate_audit_dropped_total COUNTER Audit events logged but left out of the audit ring because its store fell behind.",
		"mcpgate_connections GAUGE OAuth connections (one per connector and user, or per shared connector) by state.",
		"mcpgate_token_refreshes_total COUNTER OAuth token refreshes by connector and outcome (ok, failed, invalid_grant).",
		"mcpgate_tool_calls_total COUNTER Tool calls by connector and outcome (ok, tool_error, upstream_error, denied, needs_auth, invalid).",
		"mcpgate_tool_search_duration_seconds HISTOGRAM Time to answer a call of mcpgate_search_tools, the caller's tool lists gathered and the index searched.",
		"mcpgate_tool_searches_total COUNTER Calls of mcpgate_search_tools by outcome (ok, bad_query).",
		"mcpgate_upstream_request_duration_seconds HISTOGRAM Time from sending a request to an upstream MCP server to having read its answer, by connector.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("families:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
