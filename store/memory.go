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
// nothing to survive a restart. Create one with NewMemory.
type Memory struct {
	now func() time.Time // the clock that expires records; tests set it

	mu      sync.Mutex
	records map[string]memoryRecord
}

type memoryRecord struct {
	value   []byte
	expires time.Time // zero: never
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock returns an empty in-memory Store whose records expire by
// the clock now, for tests that move time themselves.
func NewMemoryClock(now func() time.Time) *Memory {
	return &Memory{now: now, records: make(map[string]memoryRecord)}
}

// Get returns a copy of the value under key, or ErrNotFound.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(key)
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(r.value), nil
}

// Put stores a copy of value under key; a ttl above zero expires it.
func (m *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return m.Batch(ctx, []Write{{Key: key, Value: value, TTL: ttl}})
}

// Take returns the value under key and deletes it, or ErrNotFound.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
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
	if err := checkKey(key); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(key)
	if !ok || !bytes.Equal(r.value, old) {
		return false, nil
	}
	r.value = bytes.Clone(value)
	m.records[key] = r
	return true, nil
}

// add adds n to the count under key and returns the new count.
func (m *Memory) add(_ context.Context, key string, n uint64) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, found := m.live(key)
	count, value, err := bump(r.value, found, n)
	if err != nil {
		return 0, err
	}
	m.records[key] = memoryRecord{value: value}
	return count, nil
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

var (
	_ Store   = (*Memory)(nil)
	_ Swapper = (*Memory)(nil)
	_ adder   = (*Memory)(nil)
)

// Batch applies writes under one lock, so that a reader sees all or none.
func (m *Memory) Batch(_ context.Context, writes []Write) error {
	if err := checkWrites(writes); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, w := range writes {
		if w.Delete {
			delete(m.records, w.Key)
			continue
		}
		r := memoryRecord{value: bytes.Clone(w.Value)}
		if w.TTL > 0 {
			r.expires = now.Add(w.TTL)
		}
		m.records[w.Key] = r
	}
	return nil
}

var _ Batcher = (*Memory)(nil)
