package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// leaseTTL is the TTL of a lease that must not expire during a case.
const leaseTTL = time.Hour

// testLeaseHeld: a held lease refuses other holders; its holder gets it
// again with the same token; Renew and Release need the holder and the
// token; a release lets another take it at once, with a greater token,
// and the old lease is lost for good.
func testLeaseHeld(t *testing.T, s store.Shared) {
	ctx := t.Context()
	a, err := s.Acquire(ctx, "refresh/g1", "a", leaseTTL)
	must(t, err)
	if a.Name != "refresh/g1" || a.Holder != "a" || a.Token == 0 || time.Until(a.Expires) < leaseTTL/2 {
		t.Errorf("Acquire = %+v", a)
	}
	if _, err := s.Acquire(ctx, "refresh/g1", "b", leaseTTL); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("Acquire of a held lease by another holder: %v, want ErrLeaseHeld", err)
	}
	if again, err := s.Acquire(ctx, "refresh/g1", "a", leaseTTL); err != nil || again.Token != a.Token {
		t.Errorf("Acquire by the holder = %+v, %v; want the token %d kept", again, err, a.Token)
	}
	if r, err := s.Renew(ctx, a, leaseTTL); err != nil || r.Token != a.Token || r.Holder != "a" {
		t.Errorf("Renew = %+v, %v", r, err)
	}
	for name, l := range map[string]store.Lease{
		"token":  {Name: a.Name, Holder: a.Holder, Token: a.Token + 1},
		"holder": {Name: a.Name, Holder: "b", Token: a.Token},
		"name":   {Name: "refresh/g2", Holder: a.Holder, Token: a.Token},
	} {
		if _, err := s.Renew(ctx, l, leaseTTL); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("Renew with another %s: %v, want ErrLeaseLost", name, err)
		}
		must(t, s.Release(ctx, l))
	}
	if _, err := s.Acquire(ctx, "refresh/g1", "b", leaseTTL); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("a Release with the wrong holder or token released the lease: %v", err)
	}
	if _, err := s.Acquire(ctx, "refresh/g2", "b", leaseTTL); err != nil {
		t.Errorf("a lease on another name: %v", err)
	}

	must(t, s.Release(ctx, a))
	must(t, s.Release(ctx, a)) // a lease already released is no error
	b, err := s.Acquire(ctx, "refresh/g1", "b", leaseTTL)
	if err != nil || b.Token <= a.Token {
		t.Fatalf("Acquire after a release = %+v, %v; want a token above %d", b, err, a.Token)
	}
	if _, err := s.Renew(ctx, a, leaseTTL); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("Renew of a released lease: %v, want ErrLeaseLost", err)
	}
	must(t, s.Release(ctx, a))
	if _, err := s.Acquire(ctx, "refresh/g1", "c", leaseTTL); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("a stale Release freed another holder's lease: %v", err)
	}
}

// testLeaseExclusive: holders racing for one lease hold it one at a time,
// and each acquisition's token is greater than the one before.
func testLeaseExclusive(t *testing.T, s store.Shared) {
	var inside atomic.Int32
	var mu sync.Mutex
	var tokens []uint64
	race(8, func(i int) {
		for round := range 3 {
			if !holdOnce(t, s, key("worker", i), &inside, func(l store.Lease) {
				mu.Lock()
				tokens = append(tokens, l.Token)
				mu.Unlock()
			}) {
				t.Errorf("worker %d never got the lease in round %d", i, round)
				return
			}
		}
	})
	if !slices.IsSorted(tokens) || len(slices.Compact(slices.Clone(tokens))) != len(tokens) {
		t.Errorf("tokens in the order of acquisition: %v; want them growing", tokens)
	}
}

// holdOnce acquires the lease that testLeaseExclusive races for, holds it
// a moment counting the holders inside, calls got, and releases it. It
// reports false if the lease never came within deadline.
func holdOnce(t *testing.T, s store.Shared, holder string, inside *atomic.Int32, got func(store.Lease)) bool {
	ctx := t.Context()
	for end := time.Now().Add(deadline); time.Now().Before(end); {
		l, err := s.Acquire(ctx, "refresh/hot", holder, leaseTTL)
		if errors.Is(err, store.ErrLeaseHeld) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Errorf("Acquire: %v", err)
			return false
		}
		if n := inside.Add(1); n != 1 {
			t.Errorf("%d holders hold the lease at once", n)
		}
		got(l)
		time.Sleep(time.Millisecond) // long enough for an overlap to show
		inside.Add(-1)
		if err := s.Release(ctx, l); err != nil {
			t.Errorf("Release: %v", err)
		}
		return true
	}
	return false
}

// testLeaseExpiry: a lease that expires can be taken by another holder,
// with a greater token; the old holder's Renew then fails and its
// Release frees nothing.
func testLeaseExpiry(t *testing.T, s store.Shared) {
	ctx := t.Context()
	a, err := s.Acquire(ctx, "refresh/g1", "a", shortTTL)
	must(t, err)
	var b store.Lease
	wait.Until(t, deadline, "an expired lease was never free for another holder", func() bool {
		b, err = s.Acquire(ctx, "refresh/g1", "b", leaseTTL)
		if err != nil && !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("Acquire: %v", err)
		}
		return err == nil
	})
	if b.Token <= a.Token {
		t.Errorf("the token after an expiry is %d, not above %d", b.Token, a.Token)
	}
	if _, err := s.Renew(ctx, a, leaseTTL); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("Renew of a lease taken by another: %v, want ErrLeaseLost", err)
	}
	must(t, s.Release(ctx, a))
	if _, err := s.Acquire(ctx, "refresh/g1", "c", leaseTTL); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("the old holder's Release freed the new holder's lease: %v", err)
	}
}

// testLeaseStrictRenew: a lease that expired is lost even if no one took
// it: Renew fails, Release is no error, and its holder acquiring again
// gets a new token.
func testLeaseStrictRenew(t *testing.T, s store.Shared) {
	ctx := t.Context()
	a, err := s.Acquire(ctx, "refresh/g1", "a", shortTTL)
	must(t, err)
	sleepPast(a.Expires, 100*time.Millisecond)
	if _, err := s.Renew(ctx, a, leaseTTL); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("Renew after the expiry: %v, want ErrLeaseLost", err)
	}
	must(t, s.Release(ctx, a))
	again, err := s.Acquire(ctx, "refresh/g1", "a", leaseTTL)
	if err != nil || again.Token <= a.Token {
		t.Errorf("Acquire by the holder after the expiry = %+v, %v; want a token above %d", again, err, a.Token)
	}
}

// testLeaseHidden: leases are not records: no read or List shows them,
// and a record under the same name is another thing.
func testLeaseHidden(t *testing.T, s store.Shared) {
	ctx := t.Context()
	_, err := s.Acquire(ctx, "hidden-lease", "a", leaseTTL)
	must(t, err)
	if _, err := s.Get(ctx, "hidden-lease"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a lease's name: %v, want ErrNotFound", err)
	}
	must(t, s.Put(ctx, "visible", []byte("v"), 0))
	keys, err := s.List(ctx, "")
	must(t, err)
	for _, k := range keys {
		if strings.Contains(k, "hidden-lease") {
			t.Errorf("List shows the lease as %q", k)
		}
	}
	if !slices.Contains(keys, "visible") {
		t.Errorf("List = %q, want the record", keys)
	}
	must(t, s.Put(ctx, "hidden-lease", []byte("record"), 0))
	if _, err := s.Acquire(ctx, "hidden-lease", "b", leaseTTL); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("a record under the lease's name changed the lease: %v", err)
	}
}

// testLeaseBadInput: a bad name, an empty holder or a TTL not above
// zero is refused, as an error that is neither ErrLeaseHeld nor
// ErrLeaseLost.
func testLeaseBadInput(t *testing.T, s store.Shared) {
	ctx := t.Context()
	good, err := s.Acquire(ctx, "refresh/g1", "a", leaseTTL)
	must(t, err)
	_, errName := s.Acquire(ctx, "", "a", leaseTTL)
	_, errHolder := s.Acquire(ctx, "refresh/g2", "", leaseTTL)
	_, errTTL := s.Acquire(ctx, "refresh/g2", "a", 0)
	_, errNegative := s.Acquire(ctx, "refresh/g2", "a", -time.Second)
	_, errRenew := s.Renew(ctx, good, 0)
	for what, err := range map[string]error{
		"an empty name": errName, "an empty holder": errHolder, "a zero TTL": errTTL,
		"a negative TTL": errNegative, "a Renew with a zero TTL": errRenew,
	} {
		if err == nil || errors.Is(err, store.ErrLeaseHeld) || errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("%s: %v, want a refusal", what, err)
		}
	}
	if !errors.Is(errName, store.ErrInvalidKey) {
		t.Errorf("an empty name: %v, want ErrInvalidKey", errName)
	}
	if _, err := s.Renew(ctx, good, leaseTTL); err != nil {
		t.Errorf("a refused Renew changed the lease: %v", err)
	}
}
