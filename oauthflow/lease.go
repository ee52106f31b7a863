package oauthflow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Several instances on one store change a grant one at a time: each
// change is made under the grant's lease in the store (a store.Leaser),
// taken after the in-process lock of the Locks, so that of the Managers
// sharing one Locks only one asks for it at a time. The lease matters
// most for refreshes: an authorization server that rotates refresh tokens
// takes a second refresh with the same token for a replay and revokes the
// whole grant (RFC 9700 §4.14.2).

// Timings of grant leases.
const (
	// leaseTTL is how long a grant's lease lasts: one token request
	// (bounded by callTimeout) and the store reads and writes around it.
	// A holder that dies leaves it to expire.
	leaseTTL = callTimeout + 15*time.Second
	// leaseWait bounds the wait for another instance's lease: longer
	// than leaseTTL, so that a lease whose holder died is taken over.
	leaseWait = leaseTTL + 5*time.Second
	// leasePoll is how often a waiting Manager asks for the lease again
	// when no notice of the holder's write wakes it first (a holder that
	// ends without writing sends none).
	leasePoll = 250 * time.Millisecond
)

// ErrBusy means another instance kept changing a grant for longer than
// the wait allows; the change may be tried again.
var ErrBusy = errors.New("oauthflow: another instance is changing this grant")

// holder names these Locks as a lease holder and a notice's sender: a
// random id, made once.
func (l *Locks) holder() string {
	l.idOnce.Do(func() { l.id = rand.Text() })
	return l.id
}

// grantLease is a grant's lease, held, and when it was taken by the local
// clock (the store's may differ).
type grantLease struct {
	store.Leaser
	lease store.Lease
	taken time.Time
}

// acquire takes the lease on the grant under key for m's Locks, waiting up
// to m.leaseWait while another holds it: it tries again when that
// holder's write is announced, or every leasePoll. A store without leases
// gives a nil lease and no error.
func (m *Manager) acquire(ctx context.Context, key string) (*grantLease, error) {
	leaser, ok := m.store.(store.Leaser)
	if !ok {
		return nil, nil
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, m.leaseWait)
	defer cancel()
	for {
		wake := m.locks.changes.stamp(key).changed()
		l, err := leaser.Acquire(ctx, key, m.locks.holder(), leaseTTL)
		switch {
		case err == nil:
			return &grantLease{Leaser: leaser, lease: l, taken: time.Now()}, nil
		case parent.Err() != nil:
			return nil, fmt.Errorf("waiting for the grant's lease: %w", parent.Err())
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w: waited %v for its lease", ErrBusy, m.leaseWait)
		case !errors.Is(err, store.ErrLeaseHeld):
			return nil, fmt.Errorf("taking the grant's lease: %w", err)
		}
		select {
		case <-wake:
		case <-time.After(leasePoll):
		case <-ctx.Done():
		}
	}
}

// renew extends the lease before a write when half of it has gone, so
// that no other instance takes it while the write is on its way. A lease
// lost meanwhile is no reason not to write: the write is conditional on
// the version read, and refuses to overwrite a change made since.
func (g *grantLease) renew(ctx context.Context) {
	if g == nil || time.Since(g.taken) < leaseTTL/2 {
		return
	}
	if l, err := g.Renew(ctx, g.lease, leaseTTL); err == nil {
		g.lease, g.taken = l, time.Now()
	}
}

// release gives the lease back, unless the change left in memory tokens
// that the store does not hold (unsaved): a refresh whose rotated token
// could not be written keeps the lease until it expires, so that no other
// instance refreshes with the refresh token it already spent (a replay)
// while the store is down.
func (m *Manager) release(ctx context.Context, g *grantLease, unsaved bool) {
	if g == nil || unsaved {
		return
	}
	if err := g.Release(context.WithoutCancel(ctx), g.lease); err != nil {
		m.log.Warn("releasing a grant's lease", zap.Error(err))
	}
}
