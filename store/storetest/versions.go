package storetest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// testVersionChanges: every kind of write gives the record a version it
// never had before, a key deleted (or taken) and written again included,
// so that a reader holding an old version never takes a change for none.
func testVersionChanges(t *testing.T, s store.Shared) {
	ctx := t.Context()
	if _, _, err := s.GetVersioned(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetVersioned of a missing key: %v, want ErrNotFound", err)
	}
	seen := map[uint64]string{}
	last := uint64(0)
	writes := []struct {
		name  string
		value string
		write func() error
	}{
		{"Put", "put", func() error { return s.Put(ctx, "k", []byte("put"), 0) }},
		{"Put of the same value", "put", func() error { return s.Put(ctx, "k", []byte("put"), 0) }},
		{"CompareAndSwap", "swapped", func() error {
			return wantTrue(s.CompareAndSwap(ctx, "k", []byte("put"), []byte("swapped")))
		}},
		{"PutIfVersion", "if-version", func() error {
			return wantTrue(s.PutIfVersion(ctx, "k", []byte("if-version"), 0, last))
		}},
		{"Batch", "batch", func() error { return s.Batch(ctx, []store.Write{{Key: "k", Value: []byte("batch")}}) }},
		{"Delete and Put", "again", func() error {
			must(t, s.Delete(ctx, "k"))
			return s.Put(ctx, "k", []byte("again"), 0)
		}},
		{"Take and PutIfVersion 0", "created", func() error {
			_, err := s.Take(ctx, "k")
			must(t, err)
			return wantTrue(s.PutIfVersion(ctx, "k", []byte("created"), 0, 0))
		}},
	}
	for _, w := range writes {
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		value, version, err := s.GetVersioned(ctx, "k")
		if err != nil || string(value) != w.value {
			t.Fatalf("after %s GetVersioned = %q, %v; want %q", w.name, value, err, w.value)
		}
		if version == 0 {
			t.Errorf("after %s the version is 0; versions are above zero", w.name)
		}
		if before, ok := seen[version]; ok {
			t.Errorf("after %s the version is %d, which it already was after %s", w.name, version, before)
		}
		seen[version], last = w.name, version
	}
}

// wantTrue turns a conditional write's false into an error.
func wantTrue(ok bool, err error) error {
	if err == nil && !ok {
		err = errors.New("refused the write")
	}
	return err
}

// testCreateOnly: of concurrent create-only writes (version 0) of one
// key, exactly one wins, and a create-only write of a key that exists is
// refused.
func testCreateOnly(t *testing.T, s store.Shared) {
	ctx := t.Context()
	for round := range 3 {
		k := key("clients", round)
		var wins atomic.Int32
		var winner atomic.Value
		race(16, func(i int) {
			mine := key("client", i)
			ok, err := s.PutIfVersion(ctx, k, []byte(mine), 0, 0)
			if err != nil {
				t.Errorf("PutIfVersion: %v", err)
			}
			if ok {
				wins.Add(1)
				winner.Store(mine)
			}
		})
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d create-only writes won, want exactly 1", round, n)
		}
		if v, err := s.Get(ctx, k); string(v) != winner.Load() || err != nil {
			t.Errorf("round %d: the store holds %q, %v; the winner wrote %q", round, v, err, winner.Load())
		}
		if ok, err := s.PutIfVersion(ctx, k, []byte("late"), 0, 0); ok || err != nil {
			t.Errorf("a create-only write of an existing key = %v, %v; want false", ok, err)
		}
	}
}

// testStaleVersion: a write with a version that is no longer the
// record's is refused and changes nothing; with the current one it is
// made, and of concurrent writers holding it exactly one wins.
func testStaleVersion(t *testing.T, s store.Shared) {
	ctx := t.Context()
	if ok, err := s.PutIfVersion(ctx, "k", []byte("v"), 0, 7); ok || err != nil {
		t.Errorf("PutIfVersion of a missing key with version 7 = %v, %v; want false", ok, err)
	}
	if !gone(t, s, "k") {
		t.Error("a refused PutIfVersion created the key")
	}
	must(t, s.Put(ctx, "k", []byte("mine"), 0))
	_, stale, err := s.GetVersioned(ctx, "k")
	must(t, err)
	must(t, s.Put(ctx, "k", []byte("theirs"), 0))
	if ok, err := s.PutIfVersion(ctx, "k", []byte("lost update"), 0, stale); ok || err != nil {
		t.Errorf("PutIfVersion with a stale version = %v, %v; want false", ok, err)
	}
	value, current, err := s.GetVersioned(ctx, "k")
	if string(value) != "theirs" || err != nil {
		t.Errorf("after a refused write the value is %q, %v", value, err)
	}
	var wins atomic.Int32
	race(16, func(i int) {
		ok, err := s.PutIfVersion(ctx, "k", []byte(key("writer", i)), 0, current)
		if err != nil {
			t.Errorf("PutIfVersion: %v", err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if n := wins.Load(); n != 1 {
		t.Errorf("%d writers holding the current version won, want exactly 1", n)
	}
}

// testVersionTTL: PutIfVersion applies its TTL as Put does (one above
// zero expires the record, zero keeps it), and an expired record counts
// as missing for a create-only write.
func testVersionTTL(t *testing.T, s store.Shared) {
	ctx := t.Context()
	if ok, err := s.PutIfVersion(ctx, "short", []byte("v"), shortTTL, 0); !ok || err != nil {
		t.Fatalf("PutIfVersion = %v, %v", ok, err)
	}
	wait.Until(t, deadline, "a record written by PutIfVersion with a short TTL did not expire", func() bool { return gone(t, s, "short") })
	if ok, err := s.PutIfVersion(ctx, "short", []byte("again"), 0, 0); !ok || err != nil {
		t.Errorf("a create-only write over an expired record = %v, %v; want true", ok, err)
	}

	var expires time.Time
	withTTL(t, func(ttl time.Duration) bool {
		must(t, s.Put(ctx, "kept", []byte("v"), ttl))
		expires = time.Now().Add(ttl)
		_, version, err := s.GetVersioned(ctx, "kept")
		if errors.Is(err, store.ErrNotFound) {
			return true
		}
		must(t, err)
		ok, err := s.PutIfVersion(ctx, "kept", []byte("forever"), 0, version)
		must(t, err)
		return refused(t, s, "kept", ok)
	})
	sleepPast(expires, 1500*time.Millisecond) // past Badger's rounding to whole seconds
	if v, err := s.Get(ctx, "kept"); string(v) != "forever" || err != nil {
		t.Errorf("a PutIfVersion without TTL over a record with one: %q, %v; want it kept", v, err)
	}
}
