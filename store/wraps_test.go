package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// last returns the number of the last wrap handed out, 0 before any: for
// one Sealed on a fresh store, the number of wraps it made.
func (c *wrapCount) last() uint64 {
	b := c.block.Load()
	if b == nil {
		return 0
	}
	return b.start + min(b.taken.Load(), b.end-b.start)
}

// storedWraps returns the stored wrap count of the key that seals for s.
func storedWraps(t testing.TB, s *Sealed) uint64 {
	t.Helper()
	counts, err := s.Wraps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return counts[s.wraps.id]
}

// putN puts n records under prefix.
func putN(t testing.TB, s Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := s.Put(context.Background(), fmt.Sprintf("%s/%d", prefix, i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWrapsReopen checks the per-key wrap count across restarts: it
// survives close and reopen. A Sealed never hands back the rest of its
// block, so each close is a crash as far as the count goes: the stored
// count must stay at or above the wraps made, by less than a lease per
// process.
func TestWrapsReopen(t *testing.T) {
	dir := t.TempDir()
	const lease, perRun = 8, 13
	wraps, stored := 0, uint64(0)
	for run := range 3 {
		b, err := OpenBadger(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := Seal(b, testRing(t, 1))
		s.wraps.lease = lease
		if got := storedWraps(t, s); got != stored {
			t.Fatalf("run %d: the count reopened as %d, was %d", run, got, stored)
		}
		putN(t, s, fmt.Sprintf("tokens/%d", run), perRun)
		wraps += perRun
		stored = storedWraps(t, s)
		if stored < uint64(wraps) || stored >= uint64(wraps+(run+1)*lease) {
			t.Errorf("run %d: %d wraps made, %d counted", run, wraps, stored)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWrapsConcurrentPuts: Puts from many goroutines are counted exactly
// in memory, and the stored count is above by less than a lease.
func TestWrapsConcurrentPuts(t *testing.T) {
	for name, inner := range map[string]Store{"memory": NewMemory(), "badger": openBadger(t, t.TempDir())} {
		t.Run(name, func(t *testing.T) {
			s := Seal(inner, testRing(t, 1))
			const lease, workers, each = 16, 32, 25
			s.wraps.lease = lease
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						if err := s.Put(context.Background(), fmt.Sprintf("tokens/%d/%d", w, i), []byte("v"), 0); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			const n = workers * each
			if got := s.wraps.last(); got != n {
				t.Errorf("%d wraps counted in memory, want %d", got, n)
			}
			if got := storedWraps(t, s); got < n || got >= n+lease {
				t.Errorf("%d wraps stored, want %d to %d", got, n, n+lease-1)
			}
		})
	}
}

// TestWrapNumbers: two Sealed values sharing a store, as across a reload,
// hand out each wrap number once, from disjoint blocks, and the stored
// count covers them all.
func TestWrapNumbers(t *testing.T) {
	for name, inner := range map[string]Store{"memory": NewMemory(), "badger": openBadger(t, t.TempDir())} {
		t.Run(name, func(t *testing.T) {
			const lease, workers, each = 8, 16, 50
			sealed := []*Sealed{Seal(inner, testRing(t, 1)), Seal(inner, testRing(t, 1))}
			sealed[0].wraps.lease, sealed[1].wraps.lease = lease, lease
			numbers := make([][]uint64, workers)
			var wg sync.WaitGroup
			for w := range workers {
				c := sealed[w%2].wraps
				wg.Go(func() {
					for range each {
						n, err := c.next(context.Background(), inner)
						if err != nil {
							t.Error(err)
							return
						}
						numbers[w] = append(numbers[w], n)
					}
				})
			}
			wg.Wait()
			all := slices.Sorted(slices.Values(slices.Concat(numbers...)))
			if len(slices.Compact(slices.Clone(all))) != workers*each {
				t.Fatalf("%d numbers handed out, %d distinct", len(all), len(slices.Compact(all)))
			}
			stored := storedWraps(t, sealed[0])
			if highest := all[len(all)-1]; stored < highest || stored >= workers*each+2*lease {
				t.Errorf("stored count %d, highest number %d, %d wraps", stored, highest, workers*each)
			}
		})
	}
}

// TestWarnAt: the warning fires once, at the wrap that reaches the limit,
// however many goroutines cross it; the next process warns at its first
// wrap; a nil warn turns it off.
func TestWarnAt(t *testing.T) {
	inner := NewMemory()
	type call struct {
		id    string
		wraps uint64
	}
	var mu sync.Mutex
	var calls []call
	warn := func(id string, wraps uint64) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{id, wraps})
	}
	s := Seal(inner, testRing(t, 1))
	s.wraps.lease = 4
	s.WarnAt(10, warn)
	putN(t, s, "tokens/a", 9)
	if len(calls) != 0 {
		t.Fatalf("warned after 9 wraps: %v", calls)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() { putN(t, s, fmt.Sprintf("tokens/%d", w), 10) })
	}
	wg.Wait()
	id := idOf(testKey(1))
	if want := hex.EncodeToString(id[:]); len(calls) != 1 || calls[0].id != want || calls[0].wraps < 10 {
		t.Fatalf("warnings %v, want one for %s", calls, want)
	}

	next := Seal(inner, testRing(t, 1))
	next.WarnAt(10, warn)
	putN(t, next, "tokens/next", 2)
	if len(calls) != 2 || calls[1].wraps <= 89 {
		t.Errorf("warnings %v, want a second one, past 89 wraps", calls)
	}
	off := Seal(inner, testRing(t, 1))
	off.WarnAt(10, warn)
	off.WarnAt(10, nil)
	putN(t, off, "tokens/off", 1)
	if len(calls) != 2 {
		t.Errorf("warned with a nil warn: %v", calls)
	}
}

// TestWarnAtExact: sequential wraps warn at exactly the limit.
func TestWarnAtExact(t *testing.T) {
	s := Seal(NewMemory(), testRing(t, 1))
	var at []uint64
	s.WarnAt(3, func(_ string, wraps uint64) { at = append(at, wraps) })
	putN(t, s, "tokens", 5)
	if !slices.Equal(at, []uint64{3}) {
		t.Errorf("warned at %v, want [3]", at)
	}
}

// TestRewrapCounts: Rewrap counts each data key it re-wraps, under the new
// key, and nothing for the records it leaves alone.
func TestRewrapCounts(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	putN(t, Seal(inner, testRing(t, 1)), "tokens/old", 5)
	putN(t, Seal(inner, testRing(t, 3)), "tokens/lost", 1) // under a key s21 lacks
	s21 := Seal(inner, testRing(t, 2, 1))
	putN(t, s21, "tokens/new", 1)
	for range 2 {
		if _, err := s21.Rewrap(ctx); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Rewrap: %v, want the record under k3 reported", err)
		}
		if got := s21.wraps.last(); got != 6 {
			t.Fatalf("%d wraps under k2, want 6: a Put and 5 rewraps", got)
		}
	}
	counts, err := s21.Wraps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3} {
		id := idOf(testKey(n))
		if counts[hex.EncodeToString(id[:])] == 0 {
			t.Errorf("no count for k%d in %v", n, counts)
		}
	}
}

// countingStore counts the writes that reach a Store: those of records
// and those of wrap counts. It has no Add, so a Sealed over it counts with
// a Get and a Put.
type countingStore struct {
	Store
	records, counts atomic.Int64
}

func (c *countingStore) note(key string) {
	if strings.HasPrefix(key, wrapsPrefix) {
		c.counts.Add(1)
	} else {
		c.records.Add(1)
	}
}

func (c *countingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.note(key)
	return c.Store.Put(ctx, key, value, ttl)
}

// countingAdder is a countingStore with Add.
type countingAdder struct{ countingStore }

func (c *countingAdder) Add(ctx context.Context, key string, n uint64) (uint64, error) {
	c.note(key)
	return c.Store.(Adder).Add(ctx, key, n)
}

// TestWrapWrites: counting costs one store write per lease of wraps,
// whether the store adds in one step or takes a Get and a Put.
func TestWrapWrites(t *testing.T) {
	plain := &countingStore{Store: NewMemory()}
	adding := &countingAdder{countingStore{Store: NewMemory()}}
	for name, tc := range map[string]struct {
		inner    Store
		counting *countingStore
	}{
		"add":         {adding, &adding.countingStore},
		"get and put": {plain, plain},
	} {
		s := Seal(tc.inner, testRing(t, 1))
		s.wraps.lease = 64
		putN(t, s, "tokens", 1000)
		if records, counts := tc.counting.records.Load(), tc.counting.counts.Load(); records != 1000 || counts != 16 {
			t.Errorf("%s: %d record writes and %d count writes, want 1000 and 16", name, records, counts)
		}
	}
}

// TestWrapCountKeys: the counts are hidden from List and out of reach of
// Sealed's Store methods, and a count that does not decode stops the
// wraps instead of starting again from zero.
func TestWrapCountKeys(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	s := Seal(inner, testRing(t, 1))
	putN(t, s, "tokens", 1)
	key := s.wraps.key
	if keys, _ := s.List(ctx, ""); !slices.Equal(keys, []string{"tokens/0"}) {
		t.Errorf("Sealed.List = %q", keys)
	}
	if keys, _ := inner.List(ctx, wrapsPrefix); !slices.Equal(keys, []string{key}) {
		t.Errorf("the inner store lists %q under %s", keys, wrapsPrefix)
	}
	errs := map[string]error{"Put": s.Put(ctx, key, []byte("v"), 0), "Delete": s.Delete(ctx, key)}
	_, errs["Get"] = s.Get(ctx, key)
	_, errs["Take"] = s.Take(ctx, key)
	for op, err := range errs {
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
		}
	}

	inner.Put(ctx, key, []byte("garbage"), 0)
	s = Seal(inner, testRing(t, 1))
	if err := s.Put(ctx, "tokens/1", []byte("v"), 0); !errors.Is(err, ErrTampered) {
		t.Errorf("Put over a damaged count: %v", err)
	}
	if _, err := inner.Get(ctx, "tokens/1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a Put whose wrap was not counted stored its record: %v", err)
	}
	if _, err := s.Wraps(ctx); !errors.Is(err, ErrTampered) {
		t.Errorf("Wraps over a damaged count: %v", err)
	}
}

// apartCounters keeps its counters apart from its records, as PostgreSQL
// does: List and Get do not see them.
type apartCounters struct {
	*Memory
	mu     sync.Mutex
	counts map[string]uint64
}

func (a *apartCounters) Add(_ context.Context, key string, n uint64) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counts[key] += n
	return a.counts[key], nil
}

// TestWrapsApart: Wraps finds the counts of the ring's keys in a store
// that keeps counters apart from its records.
func TestWrapsApart(t *testing.T) {
	inner := &apartCounters{Memory: NewMemory(), counts: map[string]uint64{}}
	s := Seal(inner, testRing(t, 1, 2))
	s.wraps.lease = 64
	putN(t, s, "tokens", 3)
	counts, err := s.Wraps(context.Background())
	id := idOf(testKey(1))
	if want := map[string]uint64{hex.EncodeToString(id[:]): 64}; err != nil || !maps.Equal(counts, want) {
		t.Errorf("Wraps = %v, %v; want %v", counts, err, want)
	}
}
