package observe

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestToolSearchMetrics: a call of mcpgate_search_tools is counted by
// outcome (ok, or bad_query for one the search refused) and timed, is
// neither audited nor counted as a tool call, and its query is in no
// label; the built-in connector's other tool is still a tool call.
func TestToolSearchMetrics(t *testing.T) {
	o, lines := newObserver(t, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collectors()...)
	ok := searchMetrics.searches.WithLabelValues("ok")
	bad := searchMetrics.searches.WithLabelValues("bad_query")
	calls := metrics.toolCalls.WithLabelValues("mcpgate", string(mcpmux.OutcomeOK))
	okBefore, badBefore, callsBefore := testutil.ToFloat64(ok), testutil.ToFloat64(bad), testutil.ToFloat64(calls)
	timedBefore := histogramCount(t, reg)

	query := json.RawMessage(`{"query":"` + canary + `"}`)
	search := mcpmux.ToolCall{Caller: "alice", Connector: "mcpgate", Tool: "mcpgate_search_tools", Granted: true,
		Outcome: mcpmux.OutcomeOK, Duration: 2 * time.Millisecond, Arguments: query}
	if !search.IsSearch() {
		t.Fatal("a call of mcpgate_search_tools is not a search")
	}
	o.ToolCall(search)
	search.Outcome = mcpmux.OutcomeToolError
	o.ToolCall(search)
	if d := testutil.ToFloat64(ok) - okBefore; d != 1 {
		t.Errorf("ok searches grew by %v, want 1", d)
	}
	if d := testutil.ToFloat64(bad) - badBefore; d != 1 {
		t.Errorf("bad_query searches grew by %v, want 1", d)
	}
	if n := histogramCount(t, reg) - timedBefore; n != 2 {
		t.Errorf("the duration histogram counted %d searches, want 2", n)
	}
	if d := testutil.ToFloat64(calls) - callsBefore; d != 0 {
		t.Errorf("a search was counted as %v tool calls", d)
	}
	if got := events(t, o); len(got) != 0 {
		t.Errorf("a search was audited: %+v", got)
	}

	o.ToolCall(mcpmux.ToolCall{Caller: "alice", Connector: "mcpgate", Tool: "mcpgate_list_connectors", Granted: true, Outcome: mcpmux.OutcomeOK})
	if d := testutil.ToFloat64(calls) - callsBefore; d != 1 || len(events(t, o)) != 1 {
		t.Errorf("mcpgate_list_connectors: counted %v, events %+v", d, events(t, o))
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.Contains(f.String(), canary) {
			t.Errorf("metric %s holds the query", f.GetName())
		}
	}
	for _, l := range lines.All() {
		if line, _ := json.Marshal(l.ContextMap()); strings.Contains(l.Message+string(line), canary) {
			t.Errorf("line %v holds the query", l)
		}
	}
}

// histogramCount is how many searches the duration histogram of reg has
// counted.
func histogramCount(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "mcpgate_tool_search_duration_seconds" {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no mcpgate_tool_search_duration_seconds")
	return 0
}
