// Package observe is the gateway's observability: the audit log (a line
// per event on a logger, and a ring in the store) and the Prometheus
// metrics, fed by what the mux tells of its tool calls and upstream
// requests and by the OAuth manager's events. It knows no host: the host
// registers Collectors with its metrics registry and calls AttachStore
// once its store opens.
package observe

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// metrics are the gateway's counters and histograms. They are made once
// per process and registered with the metrics registry of every config
// generation, as Caddy's reverse proxy does with its own, so that a reload
// does not reset them.
var metrics = struct {
	toolCalls *prometheus.CounterVec
	upstream  *prometheus.HistogramVec
	refreshes *prometheus.CounterVec
}{
	toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "mcpgate", Name: "tool_calls_total",
		Help: "Tool calls by connector and outcome (ok, tool_error, upstream_error, denied, needs_auth, invalid).",
	}, []string{"connector", "outcome"}),
	upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "mcpgate", Name: "upstream_request_duration_seconds",
		Help:    "Time from sending a request to an upstream MCP server to having read its answer, by connector.",
		Buckets: prometheus.DefBuckets,
	}, []string{"connector"}),
	refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "mcpgate", Name: "token_refreshes_total",
		Help: "OAuth token refreshes by connector and outcome (ok, failed, invalid_grant).",
	}, []string{"connector", "outcome"}),
}

// Descriptions of the metrics read at scrape time.
var (
	connectionsDesc = prometheus.NewDesc("mcpgate_connections",
		"OAuth connections (one per connector and user, or per shared connector) by state.", []string{"state"}, nil)
	droppedDesc = prometheus.NewDesc("mcpgate_audit_dropped_total",
		"Audit events logged but left out of the audit ring because its store fell behind.", nil, nil)
)

// connectionStates are the states mcpgate_connections always reports,
// zero included, so that a series does not come and go.
var connectionStates = []connectors.State{connectors.StatePending, connectors.StateActive,
	connectors.StateReauthRequired, connectors.StateExpired, connectors.StateError, connectors.StateMisconfigured,
	connectors.StateDisconnected}

// scrapeTimeout bounds the reading of the connection states at a scrape.
const scrapeTimeout = 5 * time.Second

// StateCounter counts the OAuth connections by state, as
// oauthflow.Manager.States does.
type StateCounter interface {
	States(ctx context.Context) (map[connectors.State]int, error)
}

// Observer is one config generation's audit log and its view of the
// metrics. It is safe for concurrent use.
type Observer struct {
	logger  *zap.Logger // the host's, for the Observer's own errors
	audit   *zap.Logger // the audit lines: the host's logger, named audit
	manager func() (StateCounter, error)
	log     atomic.Pointer[audit.Log]
	pending atomic.Pointer[PendingCounter] // approvals.go
}

// New returns an Observer whose audit log is on logger (named audit)
// only, and in a ring in memory, until AttachStore. manager returns what
// counts the OAuth connections at a scrape; an error there means there is
// none (no connector uses OAuth, or the store is not open yet), and
// mcpgate_connections is left out.
func New(logger *zap.Logger, manager func() (StateCounter, error)) (*Observer, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	o := &Observer{logger: logger, audit: logger.Named("audit"), manager: manager}
	l, err := audit.New(audit.Options{Logger: o.audit})
	if err != nil {
		return nil, fmt.Errorf("starting the audit log: %v", err)
	}
	o.log.Store(l)
	return o, nil
}

// Collectors are what the host registers with its metrics registry: the
// process-wide vectors, and o for the metrics read at scrape time.
func (o *Observer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{metrics.toolCalls, metrics.upstream, metrics.refreshes,
		searchMetrics.searches, searchMetrics.duration, o}
}

// AttachStore moves the audit ring into db, the database itself,
// unsealed, since audit events are no secret (and hold none). The
// arguments of tool calls are hashed under argsKey, which the host
// derives from its seal keys. If the ring cannot be opened there, events
// go on to the logger (and the ring in memory), and the error says why.
func (o *Observer) AttachStore(db audit.Store, argsKey []byte) error {
	return o.attach(audit.Options{Store: db, ArgsKey: argsKey})
}

// AttachTable moves the audit log into table, which the instances sharing
// the host's database share, as AttachStore does into a store of one
// instance's: every instance's Query then sees every instance's events.
func (o *Observer) AttachTable(table audit.Table, argsKey []byte) error {
	return o.attach(audit.Options{Table: table, ArgsKey: argsKey})
}

// attach swaps in a Log with opts, on the audit logger, and closes the
// one before it.
func (o *Observer) attach(opts audit.Options) error {
	opts.Logger = o.audit
	l, err := audit.New(opts)
	if err != nil {
		return fmt.Errorf("opening the audit ring in the store: %w", err)
	}
	if old := o.log.Swap(l); old != nil {
		_ = old.Close()
	}
	return nil
}

// Close writes what the audit ring holds to its store and lets go of it.
// The host calls it before its store may close.
func (o *Observer) Close() {
	if l := o.log.Load(); l != nil {
		_ = l.Close()
	}
}

// Query returns the audit events that f selects, newest first.
func (o *Observer) Query(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	return o.log.Load().Query(ctx, f)
}

// AdminChange records an admin's change to the runtime configuration:
// user and connector are what it applied to, when it applied to one.
func (o *Observer) AdminChange(user, connector, detail string) {
	o.log.Load().Record(audit.Event{Kind: audit.KindAdminChange, User: user, Connector: connector,
		Outcome: audit.OutcomeOK, Detail: detail})
}

// ToolCall implements mcpmux.Observer: a count, and an audit event with
// the arguments hashed. A search is counted as one instead (search.go).
func (o *Observer) ToolCall(c mcpmux.ToolCall) {
	if c.IsSearch() {
		searched(c)
		return
	}
	connector := c.Connector
	if connector == "" {
		connector = "none"
	}
	metrics.toolCalls.WithLabelValues(connector, string(c.Outcome)).Inc()
	l := o.log.Load()
	l.Record(toolEvent(c, l.HashArgs(c.Arguments)))
}

// toolEvent is the audit event of a tool call whose arguments hash to
// argsHash.
func toolEvent(c mcpmux.ToolCall, argsHash string) audit.Event {
	e := audit.Event{Kind: audit.KindToolCall, User: c.Caller, Connector: c.Connector, Tool: c.Tool,
		Outcome: string(c.Outcome), Duration: c.Duration, ArgsHash: argsHash}
	switch {
	case c.Granted:
		e.Decision = audit.DecisionAllow
	case c.Outcome == mcpmux.OutcomeDenied:
		e.Decision = audit.DecisionDeny
	}
	if c.Err != nil {
		e.Detail = c.Err.Error()
	}
	return e
}

// UpstreamRequest implements mcpmux.Observer: the latency histogram.
func (o *Observer) UpstreamRequest(u mcpmux.UpstreamRequest) {
	metrics.upstream.WithLabelValues(u.Connector).Observe(u.Duration.Seconds())
}

// oauthKinds are the audit kinds of the OAuth events.
var oauthKinds = map[oauthflow.EventKind]audit.Kind{
	oauthflow.EventConsentStart:  audit.KindConsentStart,
	oauthflow.EventConsentFinish: audit.KindConsentFinish,
	oauthflow.EventRefresh:       audit.KindRefreshFailure,
	oauthflow.EventDisconnect:    audit.KindDisconnect,
	oauthflow.EventRevocation:    audit.KindRevocation,
}

// OAuthEvent is the OAuth manager's OnEvent: refreshes are counted, and
// every event but a refresh that worked is audited.
func (o *Observer) OAuthEvent(e oauthflow.Event) {
	if e.Kind == oauthflow.EventRefresh {
		metrics.refreshes.WithLabelValues(e.Connector, e.Outcome).Inc()
		if e.Outcome == oauthflow.OutcomeOK {
			return
		}
	}
	kind, ok := oauthKinds[e.Kind]
	if !ok {
		return
	}
	o.log.Load().Record(audit.Event{Kind: kind, User: e.User, Connector: e.Connector, Outcome: e.Outcome, Detail: e.Detail})
}

// Describe implements prometheus.Collector for the metrics read at
// scrape time.
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- droppedDesc
	ch <- pendingDesc
}

// Collect implements prometheus.Collector: the audit ring's drops, and
// the OAuth connections by state, asked of the OAuth manager (nothing
// when there is none, such as before the store opens).
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(o.log.Load().Dropped()))
	o.collectApprovals(ch)
	if o.manager == nil {
		return
	}
	m, err := o.manager()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	states, err := m.States(ctx)
	if err != nil {
		o.logger.Error("counting the OAuth connections for metrics", zap.Error(err))
		return
	}
	for _, s := range connectionStates {
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(states[s]), string(s))
	}
}

// Interface guards
var (
	_ mcpmux.Observer      = (*Observer)(nil)
	_ prometheus.Collector = (*Observer)(nil)
)
