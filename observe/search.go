package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// The outcomes of a tool search.
const (
	searchOK       = "ok"
	searchBadQuery = "bad_query"
)

// searchMetrics count the agents' tool searches and time them. No label
// holds the query: it is the agent's text, of any size and content, and a
// label per query would grow the series without bound.
var searchMetrics = struct {
	searches *prometheus.CounterVec
	duration prometheus.Histogram
}{
	searches: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "mcpgate", Name: "tool_searches_total",
		Help: "Calls of mcpgate_search_tools by outcome (ok, bad_query).",
	}, []string{"outcome"}),
	duration: prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "mcpgate", Name: "tool_search_duration_seconds",
		Help: "Time to answer a call of mcpgate_search_tools, the caller's tool lists gathered and the index searched.",
		// A search of the index takes well under a millisecond; what
		// takes longer is a list fetched from an upstream first.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}),
}

func init() {
	// Both outcomes from the start, so that a series does not appear
	// with its first search.
	searchMetrics.searches.WithLabelValues(searchOK)
	searchMetrics.searches.WithLabelValues(searchBadQuery)
}

// searched counts and times c, a call of mcpgate_search_tools. A search is
// not a call of any connector's tool and reaches no upstream tool, so it
// is not audited: an agent may search many times a task, and the calls it
// then makes are audited each. The answer is ok or, when the search
// refused its query or limit with a tool error, bad_query.
func searched(c mcpmux.ToolCall) {
	outcome := searchOK
	if c.Outcome != mcpmux.OutcomeOK {
		outcome = searchBadQuery
	}
	searchMetrics.searches.WithLabelValues(outcome).Inc()
	searchMetrics.duration.Observe(c.Duration.Seconds())
}
