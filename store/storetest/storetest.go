// Package storetest is the conformance suite of store.Shared: one set of
// cases that every backend passes (Memory, Badger, Sealed over either,
// PostgreSQL), so that the core can rely on the contract alone.
//
// The cases that depend on time use short TTLs and wait for what must
// happen with a generous deadline; none asserts that something happens
// quickly, so a loaded machine slows the suite without failing it.
package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Run runs the conformance suite on the backend that open opens. Every
// case is a parallel subtest that calls open for a store of its own,
// empty and hearing no other case's notices; open registers whatever
// cleanup the store needs with the t it is given.
func Run(t *testing.T, open func(t *testing.T) store.Shared) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open(t))
		})
	}
}

// A case is one part of the contract.
type suiteCase struct {
	name string
	run  func(t *testing.T, s store.Shared)
}

// cases lists the suite, grouped by capability: Store, Swapper, Batcher,
// Versioned, Adder, Leaser, Notifier.
var cases = []suiteCase{
	{"round-trip", testRoundTrip},
	{"no-aliasing", testNoAliasing},
	{"list", testList},
	{"ttl", testTTL},
	{"take-once", testTakeOnce},
	{"bad-keys", testBadKeys},
	{"swap", testSwap},
	{"swap-once", testSwapOnce},
	{"swap-keeps-expiry", testSwapKeepsExpiry},
	{"batch", testBatch},
	{"batch-atomic", testBatchAtomic},
	{"version-changes", testVersionChanges},
	{"version-create-only", testCreateOnly},
	{"version-stale", testStaleVersion},
	{"version-ttl", testVersionTTL},
	{"add", testAdd},
	{"add-concurrent", testAddConcurrent},
	{"lease-held", testLeaseHeld},
	{"lease-exclusive", testLeaseExclusive},
	{"lease-expiry", testLeaseExpiry},
	{"lease-strict-renew", testLeaseStrictRenew},
	{"lease-hidden", testLeaseHidden},
	{"lease-bad-input", testLeaseBadInput},
	{"notice-delivered", testNoticeDelivered},
	{"notice-order", testNoticeOrder},
	{"notice-fan-out", testNoticeFanOut},
	{"notice-cancel", testNoticeCancel},
	{"notice-no-subscriber", testNoticeNoSubscriber},
	{"notice-bad", testNoticeBad},
}

// Time in the suite: the TTL of a record or lease meant to expire, and
// how long to wait for anything that must happen. Badger expires records
// on whole seconds, so a short TTL lasts up to a second more.
const (
	shortTTL = 200 * time.Millisecond
	deadline = 30 * time.Second
)

// sleepPast sleeps until t is behind us by margin.
func sleepPast(when time.Time, margin time.Duration) {
	time.Sleep(time.Until(when.Add(margin)))
}

// gone reports whether key is missing from s, failing on other errors.
func gone(t *testing.T, s store.Shared, key string) bool {
	t.Helper()
	_, err := s.Get(t.Context(), key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return err != nil
}

// withTTL runs try with a TTL, doubling it (up to 4 times from shortTTL
// times 5) while try reports that the record expired before the case
// could act on it: on a loaded machine a short TTL can run out between
// two calls, which says nothing about the backend.
func withTTL(t *testing.T, try func(ttl time.Duration) (expiredEarly bool)) {
	t.Helper()
	ttl := 5 * shortTTL
	for range 4 {
		if !try(ttl) {
			return
		}
		ttl *= 2
	}
	t.Fatalf("the record expired before the case could act on it, even with a TTL of %v", ttl/2)
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// race runs fn(i) for i below n on n goroutines released at once, and
// waits for them all.
func race(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// key names the i-th key under prefix.
func key(prefix string, i int) string { return fmt.Sprintf("%s/%d", prefix, i) }
