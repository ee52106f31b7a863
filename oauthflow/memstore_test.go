package oauthflow

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// memStore is store.Memory on an injected clock, counting reads and
// refused leases; failGet and failPut make reads and writes fail, and
// getDelay delays each Get's answer, to widen races; afterGet, if set,
// runs between a Get's read and its answer, to hold a race window open.
type memStore struct {
	*store.Memory

	gets      atomic.Int64
	leaseHeld atomic.Int64 // Acquires refused because another holds the lease
	failGet   atomic.Bool
	failPut   atomic.Bool
	getDelay  atomic.Int64 // a time.Duration
	afterGet  atomic.Pointer[func(key string)]
}

var (
	errGet = errors.New("memstore: get refused")
	errPut = errors.New("memstore: put refused")
)

func newMemStore(now func() time.Time) *memStore {
	if now == nil {
		now = time.Now
	}
	return &memStore{Memory: store.NewMemoryClock(now)}
}

func (s *memStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, _, err := s.GetVersioned(ctx, key)
	return b, err
}

// GetVersioned counts and delays as Get does.
func (s *memStore) GetVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	s.gets.Add(1)
	if s.failGet.Load() {
		return nil, 0, errGet
	}
	b, version, err := s.Memory.GetVersioned(ctx, key)
	time.Sleep(time.Duration(s.getDelay.Load())) // the value may be stale by the time it arrives
	if f := s.afterGet.Load(); f != nil {
		(*f)(key)
	}
	return b, version, err
}

func (s *memStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.failPut.Load() {
		return errPut
	}
	return s.Memory.Put(ctx, key, value, ttl)
}

// PutIfVersion fails as Put does when failPut is set.
func (s *memStore) PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	if s.failPut.Load() {
		return false, errPut
	}
	return s.Memory.PutIfVersion(ctx, key, value, ttl, version)
}

// Acquire counts the refusals of a lease held by another.
func (s *memStore) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	l, err := s.Memory.Acquire(ctx, name, holder, ttl)
	if errors.Is(err, store.ErrLeaseHeld) {
		s.leaseHeld.Add(1)
	}
	return l, err
}

// Batch fails as Put does when failPut is set.
func (s *memStore) Batch(ctx context.Context, writes []store.Write) error {
	if s.failPut.Load() {
		return errPut
	}
	return s.Memory.Batch(ctx, writes)
}

// dump is every stored key and value, for canary sweeps.
func (s *memStore) dump() string {
	ctx := context.Background()
	keys, _ := s.Memory.List(ctx, "")
	var b strings.Builder
	for _, k := range keys {
		v, _ := s.Memory.Get(ctx, k)
		b.WriteString(k)
		b.Write(v)
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
