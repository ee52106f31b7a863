package mcpgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// gateway is what serves agents: the config's connectors and the runtime
// ones, their OAuth manager, and the mux. An admin's change to the runtime
// connectors or to a tool selection builds a new one, which replaces it
// atomically; requests under way finish on the one they started on.
type gateway struct {
	conns   []*connectors.Connector
	runtime map[string]runtimeConnector
	oauth   []oauthflow.Config
	manager *oauthflow.Manager // nil without OAuth connectors, or before Start
	mux     *mcpmux.Mux

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

// connector returns connector id, and whether it is a runtime one.
func (g *gateway) connector(id string) (c *connectors.Connector, runtime, ok bool) {
	for _, c := range g.conns {
		if c.ID == id {
			_, runtime = g.runtime[id]
			return c, runtime, true
		}
	}
	return nil, false, false
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

// runtimeConnector is a connector an admin added through the admin API,
// as the store keeps it (sealed: it may hold a client secret).
type runtimeConnector struct {
	// Config is the connector, as validated when it was added.
	Config ConnectorConfig `json:"config"`
	// Preset names the preset it took its client and metadata from.
	Preset string `json:"preset,omitempty"`
	// Title and Description describe it to people.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Created is when it was added.
	Created time.Time `json:"created"`
}

// runtimePrefix is where runtime connectors live in the store.
const runtimePrefix = "runtime/connectors/"

// loadRuntime reads the runtime connectors from the store.
func (a *App) loadRuntime(ctx context.Context) (map[string]runtimeConnector, error) {
	keys, err := a.vault.sealed.List(ctx, runtimePrefix)
	if err != nil {
		return nil, fmt.Errorf("reading the runtime connectors: %v", err)
	}
	out := make(map[string]runtimeConnector, len(keys))
	for _, key := range keys {
		raw, err := a.vault.sealed.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading runtime connector %s: %v", strings.TrimPrefix(key, runtimePrefix), err)
		}
		var rc runtimeConnector
		if err := json.Unmarshal(raw, &rc); err != nil {
			return nil, fmt.Errorf("runtime connector %s is corrupt: %v", strings.TrimPrefix(key, runtimePrefix), err)
		}
		out[rc.Config.ID] = rc
	}
	return out, nil
}

// rebuild replaces the gateway with one serving the config's connectors
// and runtime. The caller holds a.live.mu.
func (a *App) rebuild(runtime map[string]runtimeConnector) error {
	tools, err := a.loadToolRegistries(context.Background())
	if err != nil {
		return err
	}
	g, err := a.assemble(runtime, tools)
	if err != nil {
		return err
	}
	if old := a.live.gw.Swap(g); old != nil {
		old.retire()
		a.live.retired = append(slices.DeleteFunc(a.live.retired, func(g *gateway) bool { return g.closed.Load() }), old)
	}
	return nil
}

// assemble builds a gateway. Runtime connectors are validated exactly as
// the config's are, except that their values are taken literally: an admin
// API caller may not read the server's environment or files through
// placeholders.
func (a *App) assemble(runtime map[string]runtimeConnector, tools map[string]toolRegistry) (*gateway, error) {
	g := &gateway{
		conns:   slices.Clone(a.configConns),
		runtime: runtime,
		oauth:   slices.Clone(a.configOAuth),
	}
	literal := caddy.NewEmptyReplacer()
	for _, id := range slices.Sorted(maps.Keys(runtime)) {
		c, cfg, err := a.runtimeConnector(literal, runtime[id].Config)
		if err != nil {
			// One bad record must not take the gateway down with it.
			a.logger.Error("skipping a runtime connector", zap.String("connector", id), zap.Error(err))
			continue
		}
		g.conns = append(g.conns, c)
		if cfg != nil {
			g.oauth = append(g.oauth, *cfg)
		}
	}
	for i, c := range g.conns {
		if reg, ok := tools[c.ID]; ok {
			g.conns[i] = reg.apply(c)
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
	return g, nil
}

// runtimeConnector builds a runtime connector and its OAuth config, if it
// has one, checking it as the config's connectors are checked.
func (a *App) runtimeConnector(repl *caddy.Replacer, cfg ConnectorConfig) (*connectors.Connector, *oauthflow.Config, error) {
	c, err := newConnector(repl, cfg)
	if err != nil {
		return nil, nil, err
	}
	if c.Auth.Type != connectors.AuthOAuth {
		return c, nil, nil
	}
	if a.PublicURL == "" {
		return nil, nil, fmt.Errorf("connector %s: auth oauth needs public_url, the base of the OAuth callback", c.ID)
	}
	var o *OAuthConfig
	if cfg.Auth != nil {
		o = cfg.Auth.OAuth
	}
	oc, err := newOAuthConfig(repl, c, o)
	if err != nil {
		return nil, nil, err
	}
	return c, &oc, nil
}
