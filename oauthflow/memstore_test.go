package oauthflow

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// memStore is a store.Store in memory for these tests, expiring records on
// an injected clock and counting reads. failPut makes Put fail.
type memStore struct {
	now func() time.Time

	mu      sync.Mutex
	records map[string]memRecord

	gets    atomic.Int64
	failPut atomic.Bool
}

type memRecord struct {
	value   []byte
	expires time.Time
}

var errPut = errors.New("memstore: put refused")

func newMemStore(now func() time.Time) *memStore {
	return &memStore{now: now, records: make(map[string]memRecord)}
}

func (s *memStore) live(key string) (memRecord, bool) {
	r, ok := s.records[key]
	if ok && !r.expires.IsZero() && !s.now().Before(r.expires) {
		delete(s.records, key)
		return memRecord{}, false
	}
	return r, ok
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(r.value), nil
}

func (s *memStore) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if s.failPut.Load() {
		return errPut
	}
	r := memRecord{value: bytes.Clone(value)}
	if ttl > 0 {
		r.expires = s.now().Add(ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key] = r
	return nil
}

func (s *memStore) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(s.records, key)
	return r.value, nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, key)
	return nil
}

func (s *memStore) List(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.records {
		if _, ok := s.live(k); ok && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// dump is every stored byte, for canary sweeps.
func (s *memStore) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for k, r := range s.records {
		b.WriteString(k)
		b.Write(r.value)
	}
	return b.String()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var _ store.Store = (*memStore)(nil)
