package mcpgate

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// Observability: the audit log (a line per event on the mcpgate.audit
// logger, and a ring in the store for GET /mcpgate/audit) and the
// Prometheus metrics on Caddy's registry, which the admin endpoint serves
// at /metrics.

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
	connectors.StateReauthRequired, connectors.StateExpired, connectors.StateError, connectors.StateDisconnected}

// scrapeTimeout bounds the reading of the connection states at a scrape.
const scrapeTimeout = 5 * time.Second

// observability is one config generation's audit log and its view of the
// metrics.
type observability struct {
	app    *App
	logger *zap.Logger // mcpgate.audit
	log    atomic.Pointer[audit.Log]
}

// provisionObservability sets up the audit log, on the logger only until
// the store opens, and registers the metrics with the config's registry.
func (a *App) provisionObservability(ctx caddy.Context) error {
	o := &observability{app: a, logger: a.logger.Named("audit")}
	l, err := audit.New(audit.Options{Logger: o.logger})
	if err != nil {
		return fmt.Errorf("starting the audit log: %v", err)
	}
	o.log.Store(l)
	a.obs = o
	reg := ctx.GetMetricsRegistry()
	for _, c := range []prometheus.Collector{metrics.toolCalls, metrics.upstream, metrics.refreshes, o} {
		if err := register(reg, c); err != nil {
			a.logger.Error("registering metrics", zap.Error(err))
		}
	}
	return nil
}

// register registers c with reg. A collector registered already (by
// another app in the same generation) is not an error, as in Caddy's
// reverse proxy.
func register(reg *prometheus.Registry, c prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(c)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		return nil
	}
	return err
}

// attachAudit moves the audit ring into the store, once it is open: db,
// the database itself, unsealed, since audit events are no secret (and
// hold none). The arguments of tool calls are hashed under a key derived
// from the seal key ring. If the ring cannot be opened there, events go
// on to the logger (and a ring in memory), and the error is logged.
func (a *App) attachAudit(db audit.Store, ring *store.Ring) {
	l, err := audit.New(audit.Options{Logger: a.obs.logger, Store: db, ArgsKey: ring.Derive("audit arguments")})
	if err != nil {
		a.logger.Error("opening the audit ring in the store; audit events are logged only", zap.Error(err))
		return
	}
	if old := a.obs.log.Swap(l); old != nil {
		_ = old.Close()
	}
}

// closeObservability writes what the audit ring holds to the store and
// lets go of it. It runs before the store may close, and after a
// Provision that may have failed before the audit log started.
func (a *App) closeObservability() {
	if a.obs == nil {
		return
	}
	if l := a.obs.log.Load(); l != nil {
		_ = l.Close()
	}
}

// observer is what the gateway tells of its tool calls and upstream
// requests.
func (a *App) observer() mcpmux.Observer { return a.obs }

// recordAdmin records an admin's change to the runtime configuration.
func (a *App) recordAdmin(user, connector, detail string) {
	a.record(audit.Event{Kind: audit.KindAdminChange, User: user, Connector: connector, Outcome: audit.OutcomeOK, Detail: detail})
}

// auditQuery returns the audit events that f selects, newest first.
func (a *App) auditQuery(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	return a.obs.log.Load().Query(ctx, f)
}

// record records e in the audit log.
func (a *App) record(e audit.Event) {
	a.obs.log.Load().Record(e)
}

// ToolCall implements mcpmux.Observer: a count, and an audit event with
// the arguments hashed.
func (o *observability) ToolCall(c mcpmux.ToolCall) {
	connector := c.Connector
	if connector == "" {
		connector = "none"
	}
	metrics.toolCalls.WithLabelValues(connector, string(c.Outcome)).Inc()
	l := o.log.Load()
	e := audit.Event{Kind: audit.KindToolCall, User: c.Caller, Connector: c.Connector, Tool: c.Tool,
		Outcome: string(c.Outcome), Duration: c.Duration, ArgsHash: l.HashArgs(c.Arguments)}
	switch {
	case c.Granted:
		e.Decision = audit.DecisionAllow
	case c.Outcome == mcpmux.OutcomeDenied:
		e.Decision = audit.DecisionDeny
	}
	if c.Err != nil {
		e.Detail = c.Err.Error()
	}
	l.Record(e)
}

// UpstreamRequest implements mcpmux.Observer: the latency histogram.
func (o *observability) UpstreamRequest(u mcpmux.UpstreamRequest) {
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

// oauthEvent is the OAuth manager's OnEvent: refreshes are counted, and
// every event but a refresh that worked is audited.
func (a *App) oauthEvent(e oauthflow.Event) {
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
	a.record(audit.Event{Kind: kind, User: e.User, Connector: e.Connector, Outcome: e.Outcome, Detail: e.Detail})
}

// Describe implements prometheus.Collector for the metrics read at
// scrape time.
func (o *observability) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector: the audit ring's drops, and
// the OAuth connections by state, asked of the OAuth manager (nothing
// when there is none, such as before the store opens).
func (o *observability) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(o.log.Load().Dropped()))
	m, err := o.app.oauth()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	states, err := m.States(ctx)
	if err != nil {
		o.app.logger.Error("counting the OAuth connections for metrics", zap.Error(err))
		return
	}
	for _, s := range connectionStates {
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(states[s]), string(s))
	}
}

// Interface guards
var (
	_ mcpmux.Observer      = (*observability)(nil)
	_ prometheus.Collector = (*observability)(nil)
)
