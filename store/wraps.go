package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
)

// A ring key wraps each data key with AES-256-GCM under a random 96-bit
// nonce, and NIST SP 800-38D allows one key 2^32 such encryptions, past
// which a repeated nonce becomes too likely (Vault rotates for the same
// reason, see its max_operations). So Sealed counts the wraps of each
// key, in the store under wrapsPrefix and the key id in hex.
//
// Writing the count at each wrap would double the writes. Instead a Sealed
// reserves wrap numbers a lease at a time: it adds the lease to the stored
// count before it hands out the numbers below the new total, from memory.
// A crash loses the unused part of a block, never a wrap, so the stored
// count is an upper bound of the wraps made under the key. A lease of 4096
// costs one write per 4096 wraps, and at most 4096 of WrapLimit per Sealed
// (per start or reload).
//
// The count is stored in the clear, as 8 bytes big-endian. It is no
// secret; sealing it would make a wrap of its own to count; and a seal
// would not stop tampering, since whoever can write the store can put an
// older sealed count back. Sealed hides the counts from List and refuses
// to read or write them by key.
const (
	wrapsPrefix  = ClearPrefix + "wraps/"
	defaultLease = 4096
)

// WrapLimit is the wrap count at which a seal key should be retired, for
// Sealed.WarnAt: 2^30, a quarter of the 2^32 wraps NIST SP 800-38D allows
// one key under random nonces, which leaves time to act. To retire the
// key, put a new seal key first in the ring (a new seal_key first in the
// configuration); Rewrap then moves the records onto it.
const WrapLimit = 1 << 30

// wrapCount numbers the wraps under the key that seals for a Sealed.
type wrapCount struct {
	key   string // where the count is stored
	id    string // the key id in hex
	lease uint64 // numbers reserved per store write; tests lower it

	block atomic.Pointer[block] // numbers being handed out; nil before the first wrap
	mu    sync.Mutex            // held while reserving the next block

	warning atomic.Pointer[warning]
	warned  atomic.Bool
}

// block is a range of wrap numbers reserved in the store: start+1 to end.
type block struct {
	start, end uint64
	taken      atomic.Uint64 // numbers handed out; it overshoots once spent
}

type warning struct {
	limit uint64
	warn  func(keyID string, wraps uint64)
}

func newWrapCount(id keyID) *wrapCount {
	hexID := hex.EncodeToString(id[:])
	return &wrapCount{key: wrapsPrefix + hexID, id: hexID, lease: defaultLease}
}

// countWrap numbers the next wrap under the key that seals, and warns if
// the number reaches the limit. Call it before the wrap.
func (s *Sealed) countWrap(ctx context.Context) error {
	c := s.wraps
	n, err := c.next(ctx, s.inner)
	if err != nil {
		return fmt.Errorf("store: counting the wraps of seal key %s: %w", c.id, err)
	}
	if w := c.warning.Load(); w != nil && n >= w.limit && c.warned.CompareAndSwap(false, true) {
		w.warn(c.id, n)
	}
	return nil
}

// next returns the number of the next wrap. The fast path is one atomic
// add; every lease-th call reserves the next block in inner first.
func (c *wrapCount) next(ctx context.Context, inner Store) (uint64, error) {
	for {
		b := c.block.Load()
		if b != nil {
			if i := b.taken.Add(1); i <= b.end-b.start {
				return b.start + i, nil
			}
		}
		if err := c.renew(ctx, inner, b); err != nil {
			return 0, err
		}
	}
}

// renew reserves a block to replace spent, unless another goroutine
// already has.
func (c *wrapCount) renew(ctx context.Context, inner Store, spent *block) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.block.Load() != spent {
		return nil
	}
	end, err := addCount(ctx, inner, c.key, c.lease)
	if err != nil {
		return err
	}
	c.block.Store(&block{start: end - c.lease, end: end})
	return nil
}

// addCount adds n to the count under key in inner. An Adder adds in one
// step, so that Sealed values sharing a store (a reload makes a new one
// while the old one still writes, and several instances share one
// database) reserve disjoint blocks. A store that is not an Adder gets a
// Get and a Put, which two Sealed values sharing it could interleave.
func addCount(ctx context.Context, inner Store, key string, n uint64) (uint64, error) {
	if a, ok := inner.(Adder); ok {
		return a.Add(ctx, key, n)
	}
	old, err := inner.Get(ctx, key)
	found := err == nil
	if !found && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	count, value, err := bump(old, found, n)
	if err != nil {
		return 0, err
	}
	return count, inner.Put(ctx, key, value, 0)
}

// bump returns the stored count old plus n, and its encoding; found false
// means no count is stored yet. A count that does not decode is an error
// rather than a fresh start, which could under-count.
func bump(old []byte, found bool, n uint64) (uint64, []byte, error) {
	var count uint64
	if found {
		var err error
		if count, err = decodeCount(old); err != nil {
			return 0, nil, err
		}
	}
	sum, carry := bits.Add64(count, n, 0)
	if carry != 0 {
		return 0, nil, errors.New("the count overflows")
	}
	return sum, binary.BigEndian.AppendUint64(nil, sum), nil
}

func decodeCount(value []byte) (uint64, error) {
	if len(value) != 8 {
		return 0, fmt.Errorf("%w: a count has 8 bytes, not %d", ErrTampered, len(value))
	}
	return binary.BigEndian.Uint64(value), nil
}

// Wraps returns the stored wrap count of every seal key that has wrapped a
// data key in this store, by key id in hex (as ErrUnknownKey names it).
// A count is an upper bound: it includes numbers reserved and not yet
// used, here or by a process that has ended. Where the inner store keeps
// counters apart from its records (PostgreSQL), only the ring's keys are
// found.
func (s *Sealed) Wraps(ctx context.Context) (map[string]uint64, error) {
	keys, err := s.inner.List(ctx, wrapsPrefix)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]uint64, len(keys))
	for _, key := range keys {
		value, err := s.inner.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		n, err := decodeCount(value)
		if err != nil {
			return nil, fmt.Errorf("store: %q: %w", key, err)
		}
		counts[strings.TrimPrefix(key, wrapsPrefix)] = n
	}
	if err := s.adderWraps(ctx, counts); err != nil {
		return nil, err
	}
	return counts, nil
}

// adderWraps adds to counts those of the ring's keys that an Adder keeps
// apart from its records, as PostgreSQL does, where List and Get cannot
// see them. A key that left the ring is not found there.
func (s *Sealed) adderWraps(ctx context.Context, counts map[string]uint64) error {
	a, ok := s.inner.(Adder)
	if !ok {
		return nil
	}
	for _, k := range s.ring.keys {
		id := hex.EncodeToString(k.id[:])
		if _, listed := counts[id]; listed {
			continue
		}
		n, err := a.Add(ctx, wrapsPrefix+id, 0) // adding zero reads
		if err != nil {
			return err
		}
		if n > 0 {
			counts[id] = n
		}
	}
	return nil
}

// WarnAt makes s call warn, once in its life, when the wrap count of the
// key that seals reaches limit (WrapLimit is the recommended one), with
// the key id in hex and the count then, an upper bound like those of
// Wraps. A count already past limit warns at the first wrap, so each
// process, and each reload that makes a new Sealed, warns again. warn runs
// in the Put or Rewrap that wraps, so it must be quick, as a log line is.
// A nil warn turns the warning off; without WarnAt s counts and does not
// warn.
func (s *Sealed) WarnAt(limit uint64, warn func(keyID string, wraps uint64)) {
	if warn == nil {
		s.wraps.warning.Store(nil)
		return
	}
	s.wraps.warning.Store(&warning{limit: limit, warn: warn})
}
