package gateway

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// What a change of the config leaves behind: a config connector that a
// reload removes, and which the new config does not serve under its id
// (as a runtime connector that the config's had shadowed does), has its
// tokens revoked at the provider (RFC 7009) and its records purged,
// audited, once the new config is live. The old generation still knows
// the connector's client, static secret included, which the new config
// no longer has: the host hands it over (Removed). Instances on a shared
// store share one config: a reload's removal is the operator's, and
// acted on at once there too. Runtime connectors are never removed by a
// reload, only by DELETE.
//
// A connector removed while no config ran is an orphan: one that no
// running config defines at all, looked for now and then (WatchOrphans).
// On a store no other instance shares it is purged at once; on a shared
// one only after a grace period, since an instance still on the older
// config (a rolling deploy) may serve it, and restarts the grace while it
// does.

// RemovedReason is the disconnect reason, and the audit detail, of the
// grants of a connector gone from the config.
const RemovedReason = "removed from the config"

// orphanCheck is how often WatchOrphans looks for orphans.
const orphanCheck = 10 * time.Minute

// Removals revokes and purges, in the background, the records of
// connectors that no config serves any more. Stop ends the work and waits
// for it. Its fields are set before first use.
type Removals struct {
	// OAuth is the template of the managers that revoke: the gateway's
	// Options.OAuth, which gets its store only when the store opens.
	OAuth *oauthflow.Options
	// Audit records each purge, as an admin change.
	Audit func(user, connector, detail string)
	// Logger reports the purges that failed.
	Logger *zap.Logger
	// Grace is how long a connector must stay an orphan before it is
	// purged: zero, at once, for a store that no other instance shares.
	Grace time.Duration

	mu     sync.Mutex
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	done   bool
	// removing counts, by connector, the removals under way: to the
	// search for orphans, such a connector is still served, since the
	// removal revokes with the old client and the search could not.
	removing map[string]int
}

// Removed purges what each connector of configIDs, the ids the old
// generation's config defined, held that snap, the registry now, does not
// serve under its id: an OAuth one's tokens, revoked, grants and clients,
// and every one's last uses, so that a connector added later under its id
// starts with none. The old generation's memory of those uses goes at
// once, before the old config's last flush could store them again.
func (r *Removals) Removed(old *Gateway, configIDs []string, snap *connectors.Snapshot) {
	old.o.retainUsage(snap)
	for _, id := range configIDs {
		if _, served := snap.Entry(id); served {
			continue
		}
		cfg, oauth := old.OAuthClient(id)
		r.runFor(id, func(ctx context.Context) {
			if oauth {
				r.remove(ctx, cfg)
			}
			r.deleteUsage(ctx, id)
		})
	}
}

// Changed disconnects and revokes, once the new config is live, the
// grants of each config connector of before, the old generation's
// registry, that after, the new one's, still has from the config but
// with other settings that its tokens depend on (SettleTokens), through
// a manager of its own on the old client, the one the tokens were issued
// to. The registries hold the connectors as validated, placeholders and
// presets resolved. A change of title, scopes or secret keeps them.
func (r *Removals) Changed(old *Gateway, before, after *connectors.Snapshot) {
	for _, was := range before.Entries {
		next, ok := after.Entry(was.Config.ID)
		if was.Runtime || !ok || next.Runtime || len(connectors.TokenChanges(was.Config, next.Config)) == 0 {
			continue
		}
		cfg, oauth := old.OAuthClient(was.Config.ID)
		if !oauth {
			continue
		}
		r.run(func(ctx context.Context) { r.settle(ctx, cfg, was.Config, next.Config) })
	}
}

// settle disconnects and revokes the grants of connector was, now next,
// whose client cfg was, if the change made them useless, and audits it.
func (r *Removals) settle(ctx context.Context, cfg oauthflow.Config, was, next connectors.Config) {
	m, err := oauthflow.New(*r.OAuth, []oauthflow.Config{cfg})
	if err != nil {
		r.Logger.Error("revoking the tokens of a connector the config changed", zap.String("connector", cfg.Connector), zap.Error(err))
		return
	}
	defer m.Close()
	changes := TokenChanges(ctx, m, was, next)
	if len(changes) == 0 {
		return
	}
	why, revs, err := SettleTokens(ctx, m, cfg.Connector, changes, next.OAuth() != nil)
	r.audit(cfg.Connector, "the config changed the connector: "+why+"; grants disconnected", revs, err)
}

// deleteUsage deletes the stored last uses of connector, purged.
func (r *Removals) deleteUsage(ctx context.Context, connector string) {
	if r.OAuth.Store == nil {
		return
	}
	if err := connectors.DeleteUsage(ctx, r.OAuth.Store, connector); err != nil {
		r.Logger.Error("deleting the last uses of a connector removed from the config", zap.String("connector", connector), zap.Error(err))
	}
}

// remove revokes and purges the grants and clients of the connector whose
// client cfg was, through a Manager of its own: no generation serves it.
func (r *Removals) remove(ctx context.Context, cfg oauthflow.Config) {
	m, err := oauthflow.New(*r.OAuth, []oauthflow.Config{cfg})
	if err != nil {
		r.Logger.Error("purging a connector removed from the config", zap.String("connector", cfg.Connector), zap.Error(err))
		return
	}
	defer m.Close()
	revs, err := m.Remove(ctx, cfg.Connector, RemovedReason)
	r.audit(cfg.Connector, RemovedReason+"; grants purged", revs, err)
}

// audit records, as an admin change, what a change of the config did to
// the grants of connector: what, and how many of revs were revoked.
func (r *Removals) audit(connector, what string, revs []oauthflow.Revocation, err error) {
	revoked := 0
	for _, rev := range revs {
		if rev.Revoked {
			revoked++
		}
	}
	detail := fmt.Sprintf("%s: %d, revoked at the provider: %d", what, len(revs), revoked)
	if err != nil {
		detail += "; the purge failed in part: " + err.Error()
		r.Logger.Error("purging the grants of a connector the config removed or changed", zap.String("connector", connector), zap.Error(err))
	}
	r.Audit("", connector, detail)
}

// WatchOrphans purges the orphans of the store (see oauthflow.Orphans)
// now and every orphanCheck, until Stop, whenever alone says that no
// other config of this process shares the store: while a reload runs two,
// neither knows all that the other serves. snap is the registry now.
//
// Whether to look now is judged here, when the config starts, not in the
// background: at a reload the old config still runs, and its Stop hands
// what it served and this one does not to Removed, which revokes with the
// old client. A look that ran once the old config had stopped would find
// those connectors orphans too and purge them alongside, without the
// client to revoke their tokens with.
func (r *Removals) WatchOrphans(snap func() *connectors.Snapshot, alone func() bool) {
	look := alone()
	r.run(func(ctx context.Context) {
		tick := time.NewTicker(orphanCheck)
		defer tick.Stop()
		for {
			if look {
				r.purgeOrphans(ctx, snap())
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			look = alone()
		}
	})
}

// purgeOrphans purges the orphans due, the connectors that hold records
// although neither the config nor the registry defines them, shadowed
// runtime connectors included.
func (r *Removals) purgeOrphans(ctx context.Context, snap *connectors.Snapshot) {
	served := func(id string) bool {
		_, ok := snap.Entry(id)
		return ok || slices.Contains(snap.Shadowed, id) || r.isRemoving(id)
	}
	purged, err := oauthflow.PurgeOrphans(ctx, *r.OAuth, served, oauthflow.PurgeOptions{Grace: r.Grace, Reason: RemovedReason})
	for _, p := range purged {
		r.audit(p.Connector, RemovedReason+"; grants purged", p.Revocations, nil)
		r.deleteUsage(ctx, p.Connector)
	}
	if err != nil && ctx.Err() == nil {
		r.Logger.Error("purging the records of connectors no config defines", zap.Error(err))
	}
}

// runFor runs f in the background, as the removal of connector: until f
// returns, the search for orphans leaves connector alone.
func (r *Removals) runFor(connector string, f func(ctx context.Context)) {
	r.mu.Lock()
	if r.removing == nil {
		r.removing = map[string]int{}
	}
	r.removing[connector]++
	r.mu.Unlock()
	done := func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.removing[connector]--; r.removing[connector] <= 0 {
			delete(r.removing, connector)
		}
	}
	if !r.run(func(ctx context.Context) { defer done(); f(ctx) }) {
		done()
	}
}

// isRemoving reports whether a removal of connector is under way.
func (r *Removals) isRemoving(connector string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removing[connector] > 0
}

// run runs f in the background, unless Stop was called, and reports
// whether it did.
func (r *Removals) run(f func(ctx context.Context)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	r.wg.Go(func() { f(r.ctx) })
	return true
}

// Stop ends the work and waits for it. A revocation under way is not cut
// short (oauthflow revokes without the caller's context). A nil Removals
// has nothing to stop.
func (r *Removals) Stop() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.done = true
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
