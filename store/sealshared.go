package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// A Sealed is a Shared: it passes the capabilities through to its inner
// store, sealing what they write and opening what they read. Counters,
// leases and notices hold no secret and go to the inner store as they
// are. A capability the inner store lacks fails with an error naming it.

// countersPrefix is where Sealed.Add keeps its counters in the inner
// store: under ClearPrefix, since a counter is not sealed, so that Sealed
// never lists it, reads it as a damaged record or rewraps it.
const countersPrefix = ClearPrefix + "counters/"

// GetVersioned returns the opened value under key and its version.
func (s *Sealed) GetVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	v, err := innerAs[Versioned](s.inner, "read versions")
	if err != nil {
		return nil, 0, err
	}
	if err := refuseClear(key); err != nil {
		return nil, 0, err
	}
	blob, version, err := v.GetVersioned(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	value, err := s.open(key, blob)
	if err != nil {
		return nil, 0, err
	}
	return value, version, nil
}

// PutIfVersion seals value, bound to key as Put does, and stores it if
// the record's version is still version. A write refused still counts its
// wrap: the count is an upper bound.
func (s *Sealed) PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	v, err := innerAs[Versioned](s.inner, "write by version")
	if err != nil {
		return false, err
	}
	if err := CheckKey(key); err != nil {
		return false, err
	}
	blob, err := s.seal(ctx, key, value)
	if err != nil {
		return false, err
	}
	return v.PutIfVersion(ctx, key, blob, ttl, version)
}

// CompareAndSwap seals value and stores it under key if the opened value
// there equals old, keeping the record's expiry. Seals differ each time
// the same value is sealed, so it compares opened values, then swaps the
// very record it read; when that record changed meanwhile (another swap,
// or a Rewrap that left the value as it was) it reads again.
func (s *Sealed) CompareAndSwap(ctx context.Context, key string, old, value []byte) (bool, error) {
	swapper, err := innerAs[Swapper](s.inner, "compare and swap")
	if err != nil {
		return false, err
	}
	if err := refuseClear(key); err != nil {
		return false, err
	}
	for range maxAttempts {
		blob, err := s.inner.Get(ctx, key)
		if err != nil {
			return false, ignoreNotFound(err)
		}
		current, err := s.open(key, blob)
		if err != nil || !bytes.Equal(current, old) {
			return false, err
		}
		fresh, err := s.seal(ctx, key, value)
		if err != nil {
			return false, err
		}
		if swapped, err := swapper.CompareAndSwap(ctx, key, blob, fresh); swapped || err != nil {
			return swapped, err
		}
	}
	return false, fmt.Errorf("store: swapping %q: the record kept changing, %d attempts", key, maxAttempts)
}

// Add adds n to the counter under key, kept in the clear under
// countersPrefix in the inner store. Sealed.Get does not read it.
func (s *Sealed) Add(ctx context.Context, key string, n uint64) (uint64, error) {
	a, err := innerAs[Adder](s.inner, "add")
	if err != nil {
		return 0, err
	}
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	if err := refuseClear(key); err != nil {
		return 0, err
	}
	return a.Add(ctx, countersPrefix+key, n)
}

// Acquire takes the lease on name in the inner store.
func (s *Sealed) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	l, err := innerAs[Leaser](s.inner, "lease")
	if err != nil {
		return Lease{}, err
	}
	return l.Acquire(ctx, name, holder, ttl)
}

// Renew extends a lease in the inner store.
func (s *Sealed) Renew(ctx context.Context, lease Lease, ttl time.Duration) (Lease, error) {
	l, err := innerAs[Leaser](s.inner, "lease")
	if err != nil {
		return Lease{}, err
	}
	return l.Renew(ctx, lease, ttl)
}

// Release gives up a lease in the inner store.
func (s *Sealed) Release(ctx context.Context, lease Lease) error {
	l, err := innerAs[Leaser](s.inner, "lease")
	if err != nil {
		return err
	}
	return l.Release(ctx, lease)
}

// Notify sends a notice through the inner store.
func (s *Sealed) Notify(ctx context.Context, channel, payload string) error {
	n, err := innerAs[Notifier](s.inner, "notify")
	if err != nil {
		return err
	}
	return n.Notify(ctx, channel, payload)
}

// Subscribe subscribes to notices through the inner store.
func (s *Sealed) Subscribe(ctx context.Context, channel string, fn func(payload string)) error {
	n, err := innerAs[Notifier](s.inner, "notify")
	if err != nil {
		return err
	}
	return n.Subscribe(ctx, channel, fn)
}

// innerAs returns inner as the capability C, or an error saying that it
// cannot do what.
func innerAs[C any](inner Store, what string) (C, error) {
	c, ok := inner.(C)
	if !ok {
		return c, fmt.Errorf("store: %T cannot %s", inner, what)
	}
	return c, nil
}

// ignoreNotFound turns ErrNotFound into no error: for a swap, a missing
// record is no failure, only nothing to swap.
func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

var _ Shared = (*Sealed)(nil)
