package store

import (
	"context"
	"errors"
	"time"
)

// The capabilities that several instances sharing one store need, beyond
// Store: to change a record only if no one else did meanwhile, to let one
// instance at a time do a piece of work, and to tell the others that
// something changed. Memory and Badger implement them for one process;
// PostgreSQL (store/postgres) across processes. The conformance suite in
// store/storetest holds every backend to the same contract.

// Versioned is implemented by stores whose records carry a version, so
// that a read-modify-write can refuse to overwrite a newer write
// (optimistic concurrency).
type Versioned interface {
	// GetVersioned returns the value under key and its version, a number
	// above zero that changes on every write of the key (Put, Batch,
	// CompareAndSwap, PutIfVersion), even one that writes the same value,
	// and that a key deleted or expired and written again never had
	// before; ErrNotFound when there is none (or it expired).
	GetVersioned(ctx context.Context, key string) ([]byte, uint64, error)
	// PutIfVersion stores value under key, expiring after ttl when it is
	// above zero (as Put does: zero keeps it until deleted), only if the
	// record's version is still version; version zero means the key must
	// not exist (an expired record does not), which makes a create-only
	// write. It reports false, and no error, when the condition fails.
	PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error)
}

// Adder is implemented by stores that add to a counter in one step.
type Adder interface {
	// Add adds n to the counter under key, which starts at zero, and
	// returns the new count; adding zero reads it. A counter is not a
	// value: read it with Add, never with Get, since a backend may keep
	// counters apart from records (PostgreSQL and Sealed do).
	Add(ctx context.Context, key string, n uint64) (uint64, error)
}

// Lease is a lease held on a name: the right to do the work it names,
// such as refreshing one grant's tokens, until Expires.
type Lease struct {
	// Name is what the lease is on.
	Name string
	// Holder names who holds it: one instance, or one task of one.
	Holder string
	// Token is the fencing token: it grows with every acquisition of the
	// name, so that a write guarded by it can refuse a holder whose lease
	// was lost and taken by another meanwhile.
	Token uint64
	// Expires is when the lease ends unless renewed.
	Expires time.Time
}

// ErrLeaseHeld means another holder holds the lease, unexpired.
var ErrLeaseHeld = errors.New("store: lease held by another holder")

// ErrLeaseLost means a lease is no longer held: it expired (and may have
// been taken by another holder since), or it was released.
var ErrLeaseLost = errors.New("store: lease lost")

// Leaser is implemented by stores that grant leases: at most one holder
// at a time per name, across everyone sharing the store.
type Leaser interface {
	// Acquire takes the lease on name for holder for ttl, or returns
	// ErrLeaseHeld if another holder holds it unexpired. A holder that
	// holds it already gets it renewed, with the same token; one whose
	// lease expired gets a new token, like anyone else. A name follows
	// the rules of keys (CheckKey), but leases are not records: no read
	// or List shows them. An empty holder or a ttl not above zero is an
	// error.
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// Renew extends a lease still held by l's holder with l's token to
	// ttl from now, or returns ErrLeaseLost.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Release gives up a lease still held; one already lost is no error.
	Release(ctx context.Context, l Lease) error
}

// Notifier is implemented by stores that carry change notices between
// everyone sharing them: within the process for Memory and Badger,
// across instances for PostgreSQL. A notice may be lost (a broken
// connection, a subscriber that was not listening yet), so subscribers
// also re-read now and then.
type Notifier interface {
	// Notify sends payload to every subscriber of channel, those of this
	// process included. A channel and a payload are short printable
	// strings (CheckNotice has the rules), never a secret.
	Notify(ctx context.Context, channel, payload string) error
	// Subscribe calls fn with each notice on channel until ctx ends. It
	// returns once the subscription is in place, so that a notice sent
	// after it returns is delivered, and once ctx has ended fn is called
	// no more. fn runs on one goroutine per subscription, in the order
	// notices arrive, and must be quick.
	Subscribe(ctx context.Context, channel string, fn func(payload string)) error
}

// Shared is a Store with every capability: what the core needs of a
// backend that several instances share, and what every backend offers.
type Shared interface {
	Store
	Swapper
	Batcher
	Versioned
	Adder
	Leaser
	Notifier
}
