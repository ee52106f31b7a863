package store

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store kept in memory, for tests and for programs that need
// nothing to survive a restart. It implements Shared for one process:
// its leases and notices reach the users of the same *Memory. Create one
// with NewMemory.
type Memory struct {
	now func() time.Time // the clock that expires records and leases; tests set it

	mu      sync.Mutex
	records map[string]memoryRecord
	leases  map[string]leaseState
	// version is the last version given to a write. Versions count
	// writes across the whole store rather than per key, so that a key
	// deleted and written again never gets a version it had before, which
	// a reader still holding that version could take for no change.
	version uint64

	local
}

type memoryRecord struct {
	value   []byte
	expires time.Time // zero: never
	version uint64
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock returns an empty in-memory Store whose records expire by
// the clock now, for tests that move time themselves.
func NewMemoryClock(now func() time.Time) *Memory {
	m := &Memory{now: now, records: make(map[string]memoryRecord), leases: make(map[string]leaseState)}
	m.runLease = m.lease
	return m
}

// Get returns a copy of the value under key, or ErrNotFound.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	value, _, err := m.GetVersioned(ctx, key)
	return value, err
}

// GetVersioned returns a copy of the value under key and its version, or
// ErrNotFound.
func (m *Memory) GetVersioned(_ context.Context, key string) ([]byte, uint64, error) {
	if err := CheckKey(key); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(key)
	if !ok {
		return nil, 0, ErrNotFound
	}
	return bytes.Clone(r.value), r.version, nil
}

// PutIfVersion stores a copy of value under key if its version is still
// version, zero meaning that the key must not exist.
func (m *Memory) PutIfVersion(_ context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, _ := m.live(key); r.version != version {
		return false, nil
	}
	m.set(key, value, m.expiry(ttl))
	return true, nil
}

// Put stores a copy of value under key; a ttl above zero expires it.
func (m *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return m.Batch(ctx, []Write{{Key: key, Value: value, TTL: ttl}})
}

// Take returns the value under key and deletes it, or ErrNotFound.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(key)
	if !ok {
		return nil, ErrNotFound
	}
	delete(m.records, key)
	return r.value, nil
}

// Delete removes key; a missing key is not an error.
func (m *Memory) Delete(ctx context.Context, key string) error {
	return m.Batch(ctx, []Write{{Key: key, Delete: true}})
}

// List returns the live keys that start with prefix, in lexical order.
func (m *Memory) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for key := range m.records {
		if _, ok := m.live(key); ok && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// CompareAndSwap replaces the value under key with value if it equals old,
// keeping the record's expiry.
func (m *Memory) CompareAndSwap(_ context.Context, key string, old, value []byte) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(key)
	if !ok || !bytes.Equal(r.value, old) {
		return false, nil
	}
	m.set(key, value, r.expires)
	return true, nil
}

// Add adds n to the counter under key and returns the new count. The
// counter is a record of 8 bytes big-endian, which never expires; adding
// zero reads it without writing.
func (m *Memory) Add(_ context.Context, key string, n uint64) (uint64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, found := m.live(key)
	count, value, err := bump(r.value, found, n)
	if err != nil || n == 0 {
		return count, err
	}
	m.set(key, value, time.Time{})
	return count, nil
}

// set stores a copy of value under key with the next version. The caller
// holds m.mu.
func (m *Memory) set(key string, value []byte, expires time.Time) {
	m.version++
	m.records[key] = memoryRecord{value: bytes.Clone(value), expires: expires, version: m.version}
}

// expiry returns when a record written now with ttl expires: never (the
// zero time) unless ttl is above zero.
func (m *Memory) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return m.now().Add(ttl)
}

// live returns the record under key unless it is missing or expired,
// dropping an expired one. The caller holds m.mu.
func (m *Memory) live(key string) (memoryRecord, bool) {
	r, ok := m.records[key]
	if ok && !r.expires.IsZero() && !m.now().Before(r.expires) {
		delete(m.records, key)
		return memoryRecord{}, false
	}
	return r, ok
}

// Batch applies writes under one lock, so that a reader sees all or none.
func (m *Memory) Batch(_ context.Context, writes []Write) error {
	if err := checkWrites(writes); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range writes {
		if w.Delete {
			delete(m.records, w.Key)
			continue
		}
		m.set(w.Key, w.Value, m.expiry(w.TTL))
	}
	return nil
}

// lease runs op on the lease on name under m.mu. Lease states stay in
// their own map, out of List's sight, and are never deleted, so that
// tokens keep growing.
func (m *Memory) lease(name string, op leaseOp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.leases[name]
	changed, err := op(&s, m.now())
	if changed {
		m.leases[name] = s
	}
	return err
}

var _ Shared = (*Memory)(nil)
