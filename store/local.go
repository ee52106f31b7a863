package store

import (
	"context"
	"time"
)

// local is the part of Shared that Memory and Badger implement within one
// process: leases kept by the backend's own transactions (runLease), and
// notices carried by an in-process hub. Every user of the same backend
// value shares them; other processes see neither, which is why several
// instances need PostgreSQL.
type local struct {
	hub      hub
	runLease leaseRunner
}

// Acquire takes the lease on name for holder for ttl, or returns
// ErrLeaseHeld.
func (l *local) Acquire(_ context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	return acquireLease(l.runLease, name, holder, ttl)
}

// Renew extends lease to ttl from now if it is still held, or returns
// ErrLeaseLost.
func (l *local) Renew(_ context.Context, lease Lease, ttl time.Duration) (Lease, error) {
	return renewLease(l.runLease, lease, ttl)
}

// Release gives up lease if it is still held.
func (l *local) Release(_ context.Context, lease Lease) error {
	return releaseLease(l.runLease, lease)
}

// Notify sends payload to the subscribers of channel on this store.
func (l *local) Notify(_ context.Context, channel, payload string) error {
	return l.hub.notify(channel, payload)
}

// Subscribe calls fn with each notice on channel sent through this store,
// until ctx ends.
func (l *local) Subscribe(ctx context.Context, channel string, fn func(payload string)) error {
	return l.hub.subscribe(ctx, channel, fn)
}
