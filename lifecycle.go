package mcpgate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// What a change of the config leaves behind. Agents hear of every change
// to what they may use (mcpmux.Streams, gateway.ConsentNews).
//
// A config connector that a reload removes, and which the new config does
// not serve under its id (as a runtime connector that the config's had
// shadowed does), has its tokens revoked at the provider (RFC 7009) and
// its records purged, audited, once the new config is live: Caddy starts
// every app of the new config before it stops the old one, so the old
// App, at its Stop, hands the new one its client of each connector it
// removed, static secret included, which the new config no longer has.
// Instances on a shared store share one config: a reload's removal is the
// operator's, and acted on at once there too. Runtime connectors are
// never removed by a reload, only by DELETE.
//
// A connector removed while no config ran is an orphan: one that no
// running config defines at all, looked for when a config starts with no
// other on its store in this process, and now and then after. On a store
// no other instance shares it is purged at once; on a shared one only
// after orphanGrace, since an instance still on the older config (a
// rolling deploy) may serve it, and restarts the grace while it does.

// Timings of the orphan purge.
const (
	// orphanCheck is how often a config looks for orphans.
	orphanCheck = 10 * time.Minute
	// orphanGrace is how long a connector must stay an orphan on a
	// shared store before it is purged.
	orphanGrace = 24 * time.Hour
)

// removedReason is the disconnect reason, and the audit detail, of the
// grants of a connector gone from the config.
const removedReason = "removed from the config"

// replaced tells the agents listening that the config changed, once a no
// longer serves and a new config keeps their streams open: told now,
// they list the new config's view next. A config that never started
// changed nothing.
func (a *App) replaced() {
	if a.registry != nil && a.registry.Snapshot().Generation > 0 {
		a.streams.Changed()
	}
}

// oauthEvent is every OAuth manager's OnEvent: audited, and told to the
// agents whose access it changes.
func (a *App) oauthEvent(e oauthflow.Event) {
	a.obs.OAuthEvent(e)
	a.consents.OAuthEvent(e)
}

// running are the Apps of this process that started and did not stop,
// by their store, oldest first: during a reload, the old config and the
// new one.
var running = struct {
	sync.Mutex
	apps map[string][]*App
}{apps: map[string][]*App{}}

// startRunning counts a as running, and starts its search for orphans.
func (a *App) startRunning() {
	running.Lock()
	running.apps[a.vault.path] = append(running.apps[a.vault.path], a)
	running.Unlock()
	a.purges.run(a.watchOrphans)
}

// stopRunning counts a as stopped, and returns the newest App started
// after it on its store, if any: the config that replaces it. A config
// that fails to start is stopped as the newest, and replaces nothing.
func (a *App) stopRunning() *App {
	running.Lock()
	defer running.Unlock()
	apps := running.apps[a.vault.path]
	i := slices.Index(apps, a)
	if i < 0 {
		return nil
	}
	newest := apps[len(apps)-1]
	running.apps[a.vault.path] = slices.Delete(apps, i, i+1)
	if newest == a {
		return nil
	}
	return newest
}

// alone reports whether a is the only running App on its store in this
// process: while a reload runs two, neither knows all that the other
// serves.
func (a *App) alone() bool {
	running.Lock()
	defer running.Unlock()
	return slices.Equal(running.apps[a.vault.path], []*App{a})
}

// purgeRemoved revokes and purges, in the background, what each OAuth
// connector of prev's config held that a does not serve under its id.
func (a *App) purgeRemoved(prev *App) {
	snap, old := a.registry.Snapshot(), prev.live.Current()
	for _, c := range prev.Connectors {
		if _, served := snap.Entry(c.ID); served {
			continue
		}
		if cfg, ok := old.OAuthClient(c.ID); ok {
			a.purges.run(func(ctx context.Context) { a.removeConnector(ctx, cfg) })
		}
	}
}

// removeConnector revokes and purges the grants and clients of the
// connector whose client cfg was, through a Manager of its own: no
// generation of a's serves it.
func (a *App) removeConnector(ctx context.Context, cfg oauthflow.Config) {
	m, err := oauthflow.New(a.gw.OAuth, []oauthflow.Config{cfg})
	if err != nil {
		a.logger.Error("purging a connector removed from the config", zap.String("connector", cfg.Connector), zap.Error(err))
		return
	}
	defer m.Close()
	revs, err := m.Remove(ctx, cfg.Connector, removedReason)
	a.removed(cfg.Connector, revs, err)
}

// removed audits the purge of connector, gone from the config.
func (a *App) removed(connector string, revs []oauthflow.Revocation, err error) {
	revoked := 0
	for _, r := range revs {
		if r.Revoked {
			revoked++
		}
	}
	detail := fmt.Sprintf("%s; grants purged: %d, revoked at the provider: %d", removedReason, len(revs), revoked)
	if err != nil {
		detail += "; the purge failed in part: " + err.Error()
		a.logger.Error("purging a connector removed from the config", zap.String("connector", connector), zap.Error(err))
	}
	a.obs.AdminChange("", connector, detail)
}

// watchOrphans purges the orphans of a's store (see oauthflow.Orphans)
// now and every orphanCheck, until ctx ends.
func (a *App) watchOrphans(ctx context.Context) {
	tick := time.NewTicker(orphanCheck)
	defer tick.Stop()
	for {
		if a.alone() {
			a.purgeOrphans(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// purgeOrphans purges the orphans due, the connectors that hold records
// although neither the config nor the registry defines them, shadowed
// runtime connectors included.
func (a *App) purgeOrphans(ctx context.Context) {
	snap := a.registry.Snapshot()
	served := func(id string) bool {
		_, ok := snap.Entry(id)
		return ok || slices.Contains(snap.Shadowed, id)
	}
	grace := time.Duration(0)
	if a.storeDSN != "" {
		grace = orphanGrace
	}
	purged, err := oauthflow.PurgeOrphans(ctx, a.gw.OAuth, served, oauthflow.PurgeOptions{Grace: grace, Reason: removedReason})
	for _, p := range purged {
		a.removed(p.Connector, p.Revocations, nil)
	}
	if err != nil && ctx.Err() == nil {
		a.logger.Error("purging the records of connectors no config defines", zap.Error(err))
	}
}

// purges are the background purges of one config, which Cleanup ends
// and waits for. The zero value is ready; a nil one runs nothing.
type purges struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	done   bool
}

// run runs f in the background, unless stop was called.
func (p *purges) run(f func(ctx context.Context)) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if p.ctx == nil {
		p.ctx, p.cancel = context.WithCancel(context.Background())
	}
	p.wg.Go(func() { f(p.ctx) })
}

// stop ends the purges and waits for them. A revocation under way is
// not cut short (oauthflow revokes without the caller's context).
func (p *purges) stop() {
	if p == nil {
		return // a config that failed to provision
	}
	p.mu.Lock()
	p.done = true
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
