package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestMemoryLeaseClock follows a lease on Memory's clock, to the
// nanosecond: it is held until its expiry and free from then on, and the
// holder's Renew fails once it has expired.
func TestMemoryLeaseClock(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemoryClock(func() time.Time { return now })
	a, err := m.Acquire(ctx, "refresh/g", "a", time.Minute)
	if err != nil || !a.Expires.Equal(now.Add(time.Minute)) || a.Token != 1 {
		t.Fatalf("Acquire = %+v, %v", a, err)
	}
	now = now.Add(time.Minute - time.Nanosecond)
	if _, err := m.Acquire(ctx, "refresh/g", "b", time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("a nanosecond before the expiry: %v, want ErrLeaseHeld", err)
	}
	now = now.Add(time.Nanosecond)
	if _, err := m.Renew(ctx, a, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Renew at the expiry: %v, want ErrLeaseLost", err)
	}
	if b, err := m.Acquire(ctx, "refresh/g", "b", time.Minute); err != nil || b.Token != 2 {
		t.Errorf("Acquire at the expiry = %+v, %v; want token 2", b, err)
	}
}

// TestBadgerSharedReopen: versions and lease tokens survive a close and
// reopen (a token handed out before must never come again), and the
// lease records stay out of reach of keys and List.
func TestBadgerSharedReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, b.Put(ctx, "k", []byte("v"), 0))
	_, before, err := b.GetVersioned(ctx, "k")
	must(t, err)
	l, err := b.Acquire(ctx, "refresh/g", "a", time.Hour)
	must(t, err)
	must(t, b.Release(ctx, l))
	must(t, b.Close())

	b = openBadger(t, dir)
	if _, after, err := b.GetVersioned(ctx, "k"); after != before || err != nil {
		t.Errorf("the version after a reopen is %d, %v; want %d", after, err, before)
	}
	must(t, b.Put(ctx, "k", []byte("v"), 0))
	if _, next, _ := b.GetVersioned(ctx, "k"); next <= before {
		t.Errorf("a write after a reopen has the version %d, not above %d", next, before)
	}
	if again, err := b.Acquire(ctx, "refresh/g", "b", time.Hour); err != nil || again.Token <= l.Token {
		t.Errorf("Acquire after a reopen = %+v, %v; want a token above %d", again, err, l.Token)
	}
	if keys, err := b.List(ctx, ""); !slices.Equal(keys, []string{"k"}) || err != nil {
		t.Errorf("List = %q, %v; want the record alone", keys, err)
	}
	if _, err := b.Get(ctx, leasePrefix+"refresh/g"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Get of a lease record's key: %v, want ErrInvalidKey", err)
	}
}

// TestBadgerDamagedLease: a lease record that does not decode is an
// error, never a fresh lease with a token that starts again.
func TestBadgerDamagedLease(t *testing.T) {
	ctx := context.Background()
	b := openBadger(t, t.TempDir())
	err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(leasePrefix+"refresh/g"), []byte("short"))
	})
	must(t, err)
	if l, err := b.Acquire(ctx, "refresh/g", "a", time.Hour); !errors.Is(err, ErrTampered) {
		t.Errorf("Acquire over a damaged lease record = %+v, %v; want ErrTampered", l, err)
	}
}

// TestAddZeroReads: adding zero reads a counter and writes nothing, so
// that polling a counter costs no write.
func TestAddZeroReads(t *testing.T) {
	ctx := context.Background()
	for name, s := range map[string]Shared{"memory": NewMemory(), "badger": openBadger(t, t.TempDir())} {
		if n, err := s.Add(ctx, "gen", 0); n != 0 || err != nil {
			t.Errorf("%s: Add of 0 to a missing counter = %d, %v", name, n, err)
		}
		if keys, _ := s.List(ctx, ""); len(keys) != 0 {
			t.Errorf("%s: Add of 0 wrote %q", name, keys)
		}
		s.Add(ctx, "gen", 3)
		_, version, _ := s.GetVersioned(ctx, "gen")
		if n, err := s.Add(ctx, "gen", 0); n != 3 || err != nil {
			t.Errorf("%s: Add of 0 = %d, %v; want 3", name, n, err)
		}
		if _, again, _ := s.GetVersioned(ctx, "gen"); again != version {
			t.Errorf("%s: Add of 0 rewrote the counter", name)
		}
	}
}

// TestSealedShared: Sealed seals what PutIfVersion writes, bound to the
// key, and opens what GetVersioned reads, with the inner version; its
// counters are clear records it never lists, reads or rewraps; leases and
// notices are the inner store's.
func TestSealedShared(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	s := Seal(inner, testRing(t, 1))
	if ok, err := s.PutIfVersion(ctx, "tokens/a", []byte("alice's token"), 0, 0); !ok || err != nil {
		t.Fatalf("PutIfVersion = %v, %v", ok, err)
	}
	blob, innerVersion, _ := inner.GetVersioned(ctx, "tokens/a")
	if bytes.Contains(blob, []byte("alice")) {
		t.Errorf("PutIfVersion stored the value in the clear: %q", blob)
	}
	if v, version, err := s.GetVersioned(ctx, "tokens/a"); string(v) != "alice's token" || version != innerVersion || err != nil {
		t.Errorf("GetVersioned = %q, %d, %v; want the value and the version %d", v, version, err, innerVersion)
	}
	inner.Put(ctx, "tokens/b", blob, 0)
	if _, _, err := s.GetVersioned(ctx, "tokens/b"); !errors.Is(err, ErrTampered) {
		t.Errorf("a record moved to another key opened: %v", err)
	}
	must(t, inner.Delete(ctx, "tokens/b"))

	if n, err := s.Add(ctx, "registry/generation", 2); n != 2 || err != nil {
		t.Fatalf("Add = %d, %v", n, err)
	}
	if keys, _ := inner.List(ctx, countersPrefix); !slices.Equal(keys, []string{countersPrefix + "registry/generation"}) {
		t.Errorf("the inner store keeps the counters as %q", keys)
	}
	if keys, _ := s.List(ctx, ""); !slices.Equal(keys, []string{"tokens/a"}) {
		t.Errorf("Sealed lists %q", keys)
	}
	if _, err := s.Get(ctx, "registry/generation"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a counter: %v, want ErrNotFound", err)
	}
	if _, err := Seal(inner, testRing(t, 2, 1)).Rewrap(ctx); err != nil {
		t.Errorf("Rewrap beside a counter: %v", err)
	}
	if _, err := s.Add(ctx, ClearPrefix+"x", 1); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Add under ClearPrefix: %v, want ErrInvalidKey", err)
	}

	if _, err := s.Acquire(ctx, "refresh/g", "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Acquire(ctx, "refresh/g", "b", time.Hour); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("a lease taken through Sealed is not the inner store's: %v", err)
	}
	got := make(chan string, 1)
	must(t, inner.Subscribe(t.Context(), "changes", func(p string) { got <- p }))
	must(t, s.Notify(ctx, "changes", "from sealed"))
	if p := <-got; p != "from sealed" {
		t.Errorf("the inner store's subscriber got %q", p)
	}
}

// plainStore is a Store and nothing more.
type plainStore struct{ Store }

// TestSealedLacks: over a store without the capabilities, each of
// Sealed's fails saying what the inner store cannot do.
func TestSealedLacks(t *testing.T) {
	ctx := context.Background()
	s := Seal(plainStore{NewMemory()}, testRing(t, 1))
	_, _, errGet := s.GetVersioned(ctx, "k")
	_, errPut := s.PutIfVersion(ctx, "k", nil, 0, 0)
	_, errSwap := s.CompareAndSwap(ctx, "k", nil, nil)
	_, errAdd := s.Add(ctx, "k", 1)
	_, errAcquire := s.Acquire(ctx, "k", "a", time.Hour)
	_, errRenew := s.Renew(ctx, Lease{}, time.Hour)
	errs := map[string]error{
		"GetVersioned": errGet, "PutIfVersion": errPut, "CompareAndSwap": errSwap, "Add": errAdd,
		"Acquire": errAcquire, "Renew": errRenew, "Release": s.Release(ctx, Lease{}),
		"Notify": s.Notify(ctx, "c", "p"), "Subscribe": s.Subscribe(ctx, "c", func(string) {}),
		"Batch": s.Batch(ctx, nil),
	}
	for op, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "store.plainStore cannot") {
			t.Errorf("%s: %v, want an error naming the inner store", op, err)
		}
	}
}

// resealing changes the sealed record under a key just before the
// first swap reaches it, keeping its value: what a Rewrap or another
// instance's identical write does.
type resealing struct {
	*Memory
	sealed *Sealed
	done   bool
}

func (r *resealing) CompareAndSwap(ctx context.Context, key string, old, value []byte) (bool, error) {
	if !r.done {
		r.done = true
		plain, err := r.sealed.Get(ctx, key)
		if err != nil {
			return false, err
		}
		if err := r.sealed.Put(ctx, key, plain, 0); err != nil {
			return false, err
		}
	}
	return r.Memory.CompareAndSwap(ctx, key, old, value)
}

// TestSealedSwap: Sealed's swap compares opened values, so a record
// sealed again with the same value still swaps, and one whose value
// changed does not.
func TestSealedSwap(t *testing.T) {
	ctx := context.Background()
	inner := &resealing{Memory: NewMemory()}
	s := Seal(inner, testRing(t, 1))
	inner.sealed = s
	must(t, s.Put(ctx, "k", []byte("one"), 0))
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("one"), []byte("two")); !ok || err != nil {
		t.Errorf("a swap over a record sealed again = %v, %v; want true", ok, err)
	}
	if v, _ := s.Get(ctx, "k"); string(v) != "two" {
		t.Errorf("after the swap the value is %q", v)
	}
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("one"), []byte("three")); ok || err != nil {
		t.Errorf("a swap from a value that changed = %v, %v; want false", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, ClearPrefix+"x", nil, nil); ok || !errors.Is(err, ErrInvalidKey) {
		t.Errorf("a swap under ClearPrefix = %v, %v; want ErrInvalidKey", ok, err)
	}
}

// TestHubEnds: a subscription's goroutine ends with its context, leaving
// nothing in the hub, and Subscribe with an ended context starts none.
func TestHubEnds(t *testing.T) {
	m := NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	for range 20 {
		must(t, m.Subscribe(ctx, "changes", func(string) {}))
	}
	cancel()
	waitGroup(t, m)
	if err := m.Subscribe(ctx, "changes", func(string) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with an ended context: %v", err)
	}
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	if len(m.hub.subs) != 0 {
		t.Errorf("the hub keeps %d channels after every subscription ended", len(m.hub.subs))
	}
}

// waitGroup waits for every delivering goroutine of m's hub to end.
func waitGroup(t *testing.T, m *Memory) {
	t.Helper()
	ended := make(chan struct{})
	go func() {
		m.hub.running.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("subscriptions' goroutines outlived their context")
	}
}

// TestHubNeverWaits: Notify returns while a subscriber is stuck (notices
// past its queue are dropped), and a subscriber may notify from fn.
func TestHubNeverWaits(t *testing.T) {
	m := NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	defer waitGroup(t, m)
	defer cancel()
	stuck := make(chan struct{})
	must(t, m.Subscribe(ctx, "slow", func(string) { <-stuck }))
	for range noticeQueue * 2 {
		must(t, m.Notify(ctx, "slow", "x"))
	}
	close(stuck)

	echoes := make(chan string, 2)
	must(t, m.Subscribe(ctx, "echo", func(p string) {
		if p == "ping" {
			must(t, m.Notify(ctx, "echo", "pong"))
		}
		echoes <- p
	}))
	must(t, m.Notify(ctx, "echo", "ping"))
	for _, want := range []string{"ping", "pong"} {
		if got := <-echoes; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
