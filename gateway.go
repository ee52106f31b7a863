package mcpgate

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// gateway is what serves agents: one snapshot of the connector registry,
// built into connectors, their OAuth manager and the mux. Each change the
// registry announces builds a new one, which replaces it atomically;
// requests under way finish on the one they started on.
type gateway struct {
	snap    *connectors.Snapshot // the registry it serves
	conns   []*connectors.Connector
	oauth   []oauthflow.Config
	manager *oauthflow.Manager // nil without OAuth connectors, or before Start
	mux     *mcpmux.Mux
	site    *web.Handler // the site's endpoints but the HTTP APIs'

	// uses counts the requests served on it, with retiredBit set once it
	// is replaced; its mux closes when the count of a retired one reaches
	// zero. One word for both, so that a request leaving and another
	// arriving can never both miss the retirement in between (with two,
	// the last request out could read "retired" after a newcomer had
	// counted itself in, and close the gateway under it).
	uses    atomic.Int64
	closing sync.Once
	closed  atomic.Bool
}

// retiredBit marks a replaced gateway in gateway.uses.
const retiredBit = 1 << 62

// acquire returns the gateway serving now, counted as in use until leave:
// a rebuild may replace it meanwhile, but its mux stays open until the
// requests on it end.
func (a *App) acquire() *gateway {
	for {
		g := a.gateway()
		if g.uses.Add(1)&retiredBit == 0 {
			return g
		}
		g.leave() // replaced between the load and the count: take the new one
	}
}

// leave ends a use that acquire began.
func (g *gateway) leave() {
	if g.uses.Add(-1) == retiredBit {
		g.close()
	}
}

// retire marks g replaced, and closes its mux now if nothing uses it.
func (g *gateway) retire() {
	if g.uses.Or(retiredBit) == 0 {
		g.close()
	}
}

// close closes g's mux, once.
func (g *gateway) close() {
	g.closing.Do(func() {
		_ = g.mux.Close()
		g.closed.Store(true)
	})
}

// oauthFor returns the OAuth manager and consent of connector id, if it
// uses OAuth.
func (g *gateway) oauthFor(id string) (*oauthflow.Manager, oauthflow.Consent, bool) {
	cfg, ok := g.oauthConfig(id)
	if !ok || g.manager == nil {
		return nil, "", false
	}
	return g.manager, cfg.Consent, true
}

// connector returns connector id.
func (g *gateway) connector(id string) (*connectors.Connector, bool) {
	for _, c := range g.conns {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// oauthConfig returns connector id's OAuth config, if it uses OAuth.
func (g *gateway) oauthConfig(id string) (oauthflow.Config, bool) {
	for _, cfg := range g.oauth {
		if cfg.Connector == id {
			return cfg, true
		}
	}
	return oauthflow.Config{}, false
}

// rebuild replaces the gateway with one serving snap. The registry calls
// it, under its lock, for every change it announces.
func (a *App) rebuild(snap *connectors.Snapshot) error {
	g, err := a.assemble(snap)
	if err != nil {
		return err
	}
	if old := a.live.gw.Swap(g); old != nil {
		old.retire()
		a.live.retired = append(slices.DeleteFunc(a.live.retired, func(g *gateway) bool { return g.closed.Load() }), old)
	}
	return nil
}

// assemble builds a gateway serving snap. A runtime connector that no
// longer builds is skipped, so that one bad record cannot take the
// gateway down with it.
func (a *App) assemble(snap *connectors.Snapshot) (*gateway, error) {
	g := &gateway{snap: snap}
	for _, e := range snap.Entries {
		c, cfg, err := a.build(snap, e)
		if err != nil && e.Runtime {
			a.logger.Error("skipping a runtime connector", zap.String("connector", e.Config.ID), zap.Error(err))
			continue
		}
		if err != nil {
			return nil, err
		}
		g.conns = append(g.conns, c)
		if cfg != nil {
			g.oauth = append(g.oauth, *cfg)
		}
	}
	if a.vault.sealed != nil && len(g.oauth) > 0 {
		m, err := a.newManager(g.oauth)
		if err != nil {
			return nil, err
		}
		g.manager = m
	}
	var creds mcpmux.Credentials
	if len(g.oauth) > 0 {
		creds = a.credentials(g)
	}
	var stateKey []byte
	if a.vault != nil && a.vault.ring != nil {
		stateKey = a.vault.ring.Derive("request state")
	}
	mux, err := mcpmux.New(mcpmux.Options{
		StateKey:       stateKey,
		Credentials:    creds,
		Sessions:       a.sessions,
		Connectors:     g.conns,
		Policy:         a.policy,
		Separator:      a.ToolSeparator,
		MaxBody:        a.MaxRequestBody,
		ListTTL:        time.Duration(a.ListCacheTTL),
		AllowedOrigins: a.origins,
		AllowedHosts:   a.hosts,
		Logger:         a.logger.Named("mux"),
		Annotate:       annotate,
		OnDrift:        a.toolDrifted,
		Observer:       a.observer(),
	})
	if err != nil {
		return nil, err
	}
	g.mux = mux
	g.site = web.New(web.Options{
		Mux: mux, Policy: a.policy, OAuth: g.oauthFor, Manager: g.manager,
		PublicURL: a.PublicURL, ConnectTag: a.connectTag, Presets: a.registry.Presets(),
		CSRF: a.csrf, Logger: a.logger,
	})
	return g, nil
}

// build builds entry e of snap: its connector and, if it uses OAuth, its
// OAuth client config.
func (a *App) build(snap *connectors.Snapshot, e connectors.Entry) (*connectors.Connector, *oauthflow.Config, error) {
	c, err := snap.Connector(e)
	if err != nil {
		return nil, nil, err
	}
	o := e.Config.OAuth()
	if o == nil {
		return c, nil, nil
	}
	cfg, err := a.oauthConfig(c, *o)
	return c, &cfg, err
}

// checkConnector makes the checks of a connector that the registry
// leaves to the gateway: those of its OAuth client.
func (a *App) checkConnector(cfg connectors.Config, c *connectors.Connector) error {
	if o := cfg.OAuth(); o != nil {
		_, err := a.oauthConfig(c, *o)
		return err
	}
	return nil
}

// toolDrifted records that a selected tool's definition changed upstream.
// The mux has already left it out of the catalog; this makes the change
// visible to admins, with what changed.
func (a *App) toolDrifted(connector, tool string, raw json.RawMessage) {
	news, err := a.registry.Drifted(context.Background(), connector, tool, raw)
	switch {
	case err != nil:
		a.logger.Error("recording a tool's drift", zap.String("connector", connector), zap.String("tool", tool), zap.Error(err))
	case news:
		a.logger.Warn("a registered tool changed upstream and is hidden until an admin approves it",
			zap.String("connector", connector), zap.String("tool", tool))
	}
}
