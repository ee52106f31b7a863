package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// keyCheckKey holds a record sealed with the ring, so that a start with the
// wrong keys is caught before anything is read or written. It shares the
// key space (List shows it); other packages keep out of "mcpgate/".
const keyCheckKey = "mcpgate/keycheck"

var keyCheckValue = []byte("mcpgate key check v1")

// Sealed is a Store that encrypts every value and binds it to its key, on
// top of another Store. Create one with Seal. Every record of the inner
// store must have been written through a Sealed, except those under
// ClearPrefix, which it leaves alone. A Sealed also counts the
// data keys each seal key wraps, in the inner store under ClearPrefix
// (see Wraps). A Sealed is a Shared when its inner store is one (see
// sealshared.go).
type Sealed struct {
	inner Store
	ring  *Ring
	wraps *wrapCount // of the key that seals, for GCM's nonce limit; see wraps.go

	// beforeSwap, if set, runs in Rewrap between reading a record and
	// swapping it; tests use it to hold the race window open.
	beforeSwap func(key string)
}

// Seal returns a Store that seals values with ring before they reach inner.
func Seal(inner Store, ring *Ring) *Sealed {
	return &Sealed{inner: inner, ring: ring, wraps: newWrapCount(ring.current().id)}
}

// String describes the store without any key material.
func (s *Sealed) String() string {
	return fmt.Sprintf("store.Sealed{inner: %T, ring: %v}", s.inner, s.ring)
}

// Format prints the store as String does, whatever the verb.
func (s *Sealed) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// Get returns the opened value under key. A record that does not open gives
// an error wrapping ErrTampered or ErrUnknownKey.
func (s *Sealed) Get(ctx context.Context, key string) ([]byte, error) {
	if err := refuseClear(key); err != nil {
		return nil, err
	}
	blob, err := s.inner.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.open(key, blob)
}

// Put seals value, bound to key, and stores it. It counts the wrap of the
// value's data key before making it.
func (s *Sealed) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	blob, err := s.seal(ctx, key, value)
	if err != nil {
		return err
	}
	return s.inner.Put(ctx, key, blob, ttl)
}

// Batch seals the value of every put, each bound to its key, and applies
// the writes in one batch of the inner store, which must be a Batcher:
// a reader sees all of them or none.
func (s *Sealed) Batch(ctx context.Context, writes []Write) error {
	b, err := innerAs[Batcher](s.inner, "apply a batch")
	if err != nil {
		return err
	}
	if err := checkWrites(writes); err != nil {
		return err
	}
	sealed := slices.Clone(writes)
	for i, w := range sealed {
		if w.Delete {
			if err := refuseClear(w.Key); err != nil {
				return err
			}
			continue
		}
		blob, err := s.seal(ctx, w.Key, w.Value)
		if err != nil {
			return err
		}
		sealed[i].Value = blob
	}
	return b.Batch(ctx, sealed)
}

// seal seals value bound to key, counting the wrap of its data key
// before making it.
func (s *Sealed) seal(ctx context.Context, key string, value []byte) ([]byte, error) {
	if err := refuseClear(key); err != nil {
		return nil, err
	}
	if err := s.countWrap(ctx); err != nil {
		return nil, err
	}
	blob, err := s.ring.seal(key, value)
	if err != nil {
		return nil, fmt.Errorf("store: sealing %q: %w", key, err)
	}
	return blob, nil
}

// Take returns the opened value under key and deletes the record. The
// record is gone even if it does not open.
func (s *Sealed) Take(ctx context.Context, key string) ([]byte, error) {
	if err := refuseClear(key); err != nil {
		return nil, err
	}
	blob, err := s.inner.Take(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.open(key, blob)
}

// Delete removes key.
func (s *Sealed) Delete(ctx context.Context, key string) error {
	if err := refuseClear(key); err != nil {
		return err
	}
	return s.inner.Delete(ctx, key)
}

// List returns the keys that start with prefix, in lexical order. The
// wrap counts and the clear records are not listed: they are not sealed
// records.
func (s *Sealed) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := s.inner.List(ctx, prefix)
	return slices.DeleteFunc(keys, isClear), err
}

// open names the record in errors but never shows its content.
func (s *Sealed) open(key string, blob []byte) ([]byte, error) {
	value, err := s.ring.open(key, blob)
	if err != nil {
		return nil, fmt.Errorf("store: record %q: %w", key, err)
	}
	return value, nil
}

// Check makes sure the ring opens this store. If the key-check record
// exists it must open; if it does not, it is written, unless records
// sealed under keys outside the ring exist. Check never resets anything.
func (s *Sealed) Check(ctx context.Context) error {
	blob, err := s.inner.Get(ctx, keyCheckKey)
	if errors.Is(err, ErrNotFound) {
		return s.firstCheck(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: reading the key check: %w", err)
	}
	value, err := s.ring.open(keyCheckKey, blob)
	if err == nil && !bytes.Equal(value, keyCheckValue) {
		err = fmt.Errorf("%w: unexpected content", ErrTampered)
	}
	if err != nil {
		return fmt.Errorf("store: the configured seal keys cannot open existing records (key check: %w)", err)
	}
	return nil
}

// firstCheck writes the key-check record of a store that has none.
func (s *Sealed) firstCheck(ctx context.Context) error {
	lost, err := s.Unopenable(ctx)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("store: the configured seal keys cannot open %d existing records (first: %q): %w",
			len(lost), lost[0], ErrUnknownKey)
	}
	return s.Put(ctx, keyCheckKey, keyCheckValue, 0)
}

// Unopenable returns the keys of the records sealed under a key that is
// not in the ring, in lexical order: the records that dropping a key from
// the ring would lose. Records too damaged to name a key are not listed;
// reading them reports ErrTampered.
func (s *Sealed) Unopenable(ctx context.Context) ([]string, error) {
	keys, err := s.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var lost []string
	for _, key := range keys {
		blob, err := s.inner.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted or expired since the listing
		}
		if err != nil {
			return nil, err
		}
		if rec, err := parseRecord(blob); err == nil && s.ring.lookup(rec.id) == nil {
			lost = append(lost, key)
		}
	}
	return lost, nil
}

// Rewrap re-wraps the data key of every record sealed under an older key
// with the current one, leaving the value's ciphertext as it is, and
// returns how many records it rewrote. A record that changed meanwhile is
// left alone (it was written under the current key), so Rewrap is safe
// beside other readers and writers; expiry is kept. Records that cannot be
// re-wrapped (damaged, or under a key not in the ring) are counted in the
// error after the others are done. The inner store must implement Swapper.
func (s *Sealed) Rewrap(ctx context.Context) (int, error) {
	swapper, ok := s.inner.(Swapper)
	if !ok {
		return 0, fmt.Errorf("store: rewrap needs a store with CompareAndSwap, %T has none", s.inner)
	}
	keys, err := s.List(ctx, "")
	if err != nil {
		return 0, err
	}
	n, failed := 0, 0
	var first error
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		done, err := s.rewrapOne(ctx, swapper, key)
		switch {
		case err != nil && first == nil:
			failed, first = 1, err
		case err != nil:
			failed++
		case done:
			n++
		}
	}
	if first != nil {
		return n, fmt.Errorf("store: rewrap left %d records under their old keys; first: %w", failed, first)
	}
	return n, nil
}

// rewrapOne re-wraps one record and reports whether it rewrote it.
func (s *Sealed) rewrapOne(ctx context.Context, swapper Swapper, key string) (bool, error) {
	old, err := s.inner.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fresh, err := s.ring.rewrap(key, old, func() error { return s.countWrap(ctx) })
	if err != nil {
		return false, fmt.Errorf("store: record %q: %w", key, err)
	}
	if fresh == nil {
		return false, nil // already under the current key
	}
	if s.beforeSwap != nil {
		s.beforeSwap(key)
	}
	return swapper.CompareAndSwap(ctx, key, old, fresh)
}

var (
	_ Store   = (*Sealed)(nil)
	_ Batcher = (*Sealed)(nil)
)
