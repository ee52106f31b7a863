package connectors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// usageClock is a settable clock for Usage.
type usageClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *usageClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *usageClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// last returns Last, failing the test on an error.
func last(t *testing.T, u *Usage, s Storage, connector, user string) time.Time {
	t.Helper()
	at, err := u.Last(context.Background(), s, connector, user)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestUsageLast: a use is seen at once in memory, by connector and by
// user; the store sees it only after a Flush, and another instance (or
// the next start) then reads it from there, the newest use winning.
func TestUsageLast(t *testing.T) {
	clock := &usageClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := store.NewMemory()
	u := &Usage{Now: clock.Now}
	start := clock.Now()
	if at := last(t, u, st, "notion", ""); !at.IsZero() {
		t.Fatalf("a connector never used was last used at %v", at)
	}
	u.Touch("notion", "alice")
	clock.Add(time.Minute)
	u.Touch("notion", "bob")
	u.Touch("github", "alice")
	for _, tc := range []struct {
		connector, user string
		want            time.Time
	}{
		{"notion", "alice", start}, {"notion", "bob", start.Add(time.Minute)}, {"notion", "", start.Add(time.Minute)},
		{"notion", "carol", time.Time{}}, {"github", "", start.Add(time.Minute)},
	} {
		if at := last(t, u, st, tc.connector, tc.user); !at.Equal(tc.want) {
			t.Errorf("last use of %s by %q = %v, want %v", tc.connector, tc.user, at, tc.want)
		}
	}
	if keys, _ := st.List(context.Background(), usagePrefix); len(keys) != 0 {
		t.Fatalf("uses reached the store before a flush: %q", keys)
	}

	if err := u.Flush(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	other := &Usage{Now: clock.Now}
	if at := last(t, other, st, "notion", "alice"); !at.Equal(start) {
		t.Errorf("another instance reads alice's last use as %v, want %v", at, start)
	}
	// The other instance's newer use, flushed, is kept when this one
	// flushes an older one: the newest wins.
	clock.Add(time.Minute)
	other.Touch("notion", "alice")
	if err := other.Flush(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	u.Touch("notion", "bob")
	if err := u.Flush(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	fresh := &Usage{}
	if at := last(t, fresh, st, "notion", "alice"); !at.Equal(start.Add(2 * time.Minute)) {
		t.Errorf("after both flushed, alice's last use is %v, want %v", at, start.Add(2*time.Minute))
	}
	if at := last(t, fresh, nil, "notion", ""); !at.IsZero() {
		t.Errorf("memory alone of a Usage never touched: %v", at)
	}
}

// countingStore counts the writes to a Storage with versions, and can
// fail them, or let another write come first once (race).
type countingStore struct {
	*store.Memory
	mu   sync.Mutex
	puts int
	fail bool
	race func()
}

func (s *countingStore) PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	s.mu.Lock()
	race := s.race
	s.race = nil
	s.mu.Unlock()
	if race != nil {
		race()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return false, errors.New("the store is down")
	}
	s.puts++
	return s.Memory.PutIfVersion(ctx, key, value, ttl, version)
}

// TestUsageFlushWritesLittle: a flush writes each connector used since
// the last flush once, however many calls and users, and nothing when
// nothing was used; a failed write is tried again at the next flush.
func TestUsageFlushWritesLittle(t *testing.T) {
	clock := &usageClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := &countingStore{Memory: store.NewMemory()}
	u := &Usage{Now: clock.Now}
	for i := range 1000 {
		clock.Add(time.Millisecond)
		u.Touch("notion", []string{"alice", "bob"}[i%2])
	}
	ctx := context.Background()
	if err := u.Flush(ctx, st); err != nil || st.puts != 1 {
		t.Fatalf("a flush of 1000 uses of one connector: %d writes, %v", st.puts, err)
	}
	if err := u.Flush(ctx, st); err != nil || st.puts != 1 {
		t.Fatalf("a flush with nothing new: %d writes, %v", st.puts, err)
	}
	clock.Add(time.Minute)
	u.Touch("notion", "alice")
	st.fail = true
	if err := u.Flush(ctx, st); err == nil {
		t.Fatal("a failed write was not reported")
	}
	st.fail = false
	if err := u.Flush(ctx, st); err != nil || st.puts != 2 {
		t.Fatalf("the retry: %d writes, %v", st.puts, err)
	}
	if at := last(t, &Usage{}, st, "notion", "alice"); !at.Equal(clock.Now()) {
		t.Errorf("stored %v, want %v", at, clock.Now())
	}
}

// TestUsageFlushRace: when another instance flushes the same connector
// between this one's read and write, the write is made again on a fresh
// read, and both instances' uses are kept.
func TestUsageFlushRace(t *testing.T) {
	clock := &usageClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := &countingStore{Memory: store.NewMemory()}
	here, there := &Usage{Now: clock.Now}, &Usage{Now: clock.Now}
	here.Touch("notion", "alice")
	there.Touch("notion", "bob")
	ctx := context.Background()
	st.race = func() {
		if err := there.Flush(ctx, st); err != nil {
			t.Error(err)
		}
	}
	if err := here.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"alice", "bob"} {
		if at := last(t, &Usage{}, st, "notion", user); !at.Equal(clock.Now()) {
			t.Errorf("%s's use after both flushed: %v", user, at)
		}
	}
}

// forget forgets every use of connector, as the gateway does for a
// connector removed: dropped from u's memory, its record deleted from s.
func forget(t *testing.T, u *Usage, s Storage, connector string) {
	t.Helper()
	u.Retain(func(id string) bool { return id != connector })
	if err := DeleteUsage(context.Background(), s, connector); err != nil {
		t.Fatal(err)
	}
}

// TestUsageForget: a connector forgotten has no last use, in memory or in
// the store, and no later Flush brings one back, so that a connector
// added again under its id starts with none; the uses of the others
// stay. Deleting what was never stored is no error.
func TestUsageForget(t *testing.T) {
	ctx := context.Background()
	clock := &usageClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := store.NewMemory()
	u := &Usage{Now: clock.Now}
	u.Touch("notion", "alice")
	u.Touch("github", "alice")
	if err := u.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	u.Touch("notion", "bob") // in memory only
	kept := clock.Now()
	u.Touch("github", "bob")

	forget(t, u, st, "notion")
	if at := last(t, u, st, "notion", ""); !at.IsZero() {
		t.Fatalf("a connector forgotten was last used at %v", at)
	}
	if at := last(t, u, st, "github", ""); !at.Equal(kept) {
		t.Fatalf("another connector's last use is %v, want %v", at, kept)
	}
	if err := u.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, usagePrefix+"notion"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a flush after the connector was forgotten stored its record again: %v", err)
	}
	clock.Add(time.Minute)
	u.Touch("notion", "carol") // the id taken again
	if at := last(t, u, st, "notion", ""); !at.Equal(clock.Now()) || !last(t, u, st, "notion", "bob").IsZero() {
		t.Fatalf("the new connector's last use is %v, bob's %v: it inherited the old one's", at, last(t, u, st, "notion", "bob"))
	}
	forget(t, u, st, "never-stored")
}

// TestUsageRetainWaitsForFlush: a Retain that drops a connector while a
// Flush is writing it waits for the write, so that its record, deleted
// next, stays deleted.
func TestUsageRetainWaitsForFlush(t *testing.T) {
	st := &countingStore{Memory: store.NewMemory()}
	u := new(Usage)
	u.Touch("notion", "alice")
	forgotten := make(chan struct{})
	st.race = func() { // the flush has read the record and is about to write it
		go func() {
			defer close(forgotten)
			u.Retain(func(id string) bool { return id != "notion" })
			if err := DeleteUsage(context.Background(), st, "notion"); err != nil {
				t.Error(err)
			}
		}()
		select {
		case <-forgotten:
		case <-time.After(200 * time.Millisecond): // blocked on the flush, as it must be
		}
	}
	if err := u.Flush(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	<-forgotten
	if at := last(t, u, st, "notion", ""); !at.IsZero() {
		t.Fatalf("after the flush and the forget, the last use is %v", at)
	}
}

// TestUsageTouchConcurrent: uses from many goroutines are safe, and
// each key ends at its newest use.
func TestUsageTouchConcurrent(t *testing.T) {
	var u Usage
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				u.Touch("notion", []string{"alice", "bob"}[i%2])
			}
		})
	}
	wg.Wait()
	if at := last(t, &u, nil, "notion", "alice"); at.IsZero() || time.Since(at) > time.Minute {
		t.Errorf("last use = %v", at)
	}
}

// BenchmarkUsageTouch measures a use on the call path: no allocation.
func BenchmarkUsageTouch(b *testing.B) {
	var u Usage
	u.Touch("notion", "alice")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.Touch("notion", "alice")
		}
	})
}
