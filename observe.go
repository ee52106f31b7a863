package mcpgate

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/observe"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/postgres"
)

// Observability (package observe): the audit log on the mcpgate.audit
// logger and in a ring in the store for GET /mcpgate/audit, and the
// Prometheus metrics on Caddy's registry, which the admin endpoint serves
// at /metrics. Here is its wiring to Caddy's lifecycle.

// provisionObservability sets up the audit log, on the logger only until
// the store opens, and registers the metrics with the config's registry.
func (a *App) provisionObservability(ctx caddy.Context) error {
	o, err := observe.New(a.logger, func() (observe.StateCounter, error) { return a.oauth() })
	if err != nil {
		return err
	}
	a.obs = o
	reg := ctx.GetMetricsRegistry()
	for _, c := range o.Collectors() {
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
// the database itself, unsealed. On PostgreSQL the events go to its audit
// table instead, which every instance shares: rings of several instances
// in one key space would overwrite each other. The arguments of tool
// calls are hashed under a key derived from the seal key ring. A failure
// leaves audit events on the logger (and a ring in memory), and is logged.
func (a *App) attachAudit(db audit.Store, ring *store.Ring) {
	key := ring.Derive("audit arguments")
	var err error
	if pg, ok := db.(*postgres.Store); ok {
		err = a.obs.AttachTable(pg.Audit(), key)
	} else {
		err = a.obs.AttachStore(db, key)
	}
	if err != nil {
		a.logger.Error("audit events are logged only", zap.Error(err))
	}
}

// closeObservability writes what the audit ring holds to the store and
// lets go of it. It runs before the store may close, and after a
// Provision that may have failed before the audit log started.
func (a *App) closeObservability() {
	if a.obs != nil {
		a.obs.Close()
	}
}
