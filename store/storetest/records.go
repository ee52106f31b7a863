package storetest

import (
	"bytes"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// testRoundTrip: what Put stores Get returns, byte for byte, an
// overwrite replaces it, and Delete removes it (a missing key too,
// without error).
func testRoundTrip(t *testing.T, s store.Shared) {
	ctx := t.Context()
	values := map[string][]byte{
		"tokens/alice/notion": []byte("access and refresh"),
		"empty":               {},
		"binary":              {0, 1, 2, 255},
		"big":                 bytes.Repeat([]byte("x"), 64<<10),
		"odd key: é ~!@#$%":   []byte("v"),
	}
	for k, v := range values {
		must(t, s.Put(ctx, k, v, 0))
	}
	for k, want := range values {
		if got, err := s.Get(ctx, k); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Get(%q) = %.20q, %v; want %.20q", k, got, err, want)
		}
	}
	must(t, s.Put(ctx, "empty", []byte("overwritten"), 0))
	if got, err := s.Get(ctx, "empty"); string(got) != "overwritten" || err != nil {
		t.Errorf("after an overwrite Get = %q, %v", got, err)
	}
	for _, k := range []string{"binary", "missing"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}
	if _, err := s.Get(ctx, "binary"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Take(ctx, "binary"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take after Delete: %v, want ErrNotFound", err)
	}
	if got, err := s.Take(ctx, "big"); err != nil || len(got) != 64<<10 {
		t.Errorf("Take = %d bytes, %v", len(got), err)
	}
	if _, err := s.Get(ctx, "big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Take: %v, want ErrNotFound", err)
	}
}

// testNoAliasing: the store keeps its own copies, so changing a slice
// given to Put, or one returned by a read, changes nothing stored.
func testNoAliasing(t *testing.T, s store.Shared) {
	ctx := t.Context()
	v := []byte("original")
	must(t, s.Put(ctx, "k", v, 0))
	v[0] = 'X'
	got, err := s.Get(ctx, "k")
	must(t, err)
	got[0] = 'Y'
	versioned, _, err := s.GetVersioned(ctx, "k")
	must(t, err)
	versioned[0] = 'Z'
	if again, _ := s.Get(ctx, "k"); string(again) != "original" {
		t.Errorf("the stored value changed through a caller's slice: %q", again)
	}
}

// testList: List returns the keys under a prefix, in lexical (byte)
// order, and nothing for a prefix no key has.
func testList(t *testing.T, s store.Shared) {
	ctx := t.Context()
	for _, k := range []string{"a/2", "b/1", "a/10", "ab", "a/1", "a", "B"} {
		must(t, s.Put(ctx, k, []byte(k), 0))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"B", "a", "a/1", "a/10", "a/2", "ab", "b/1"}},
		{"a/", []string{"a/1", "a/10", "a/2"}},
		{"a", []string{"a", "a/1", "a/10", "a/2", "ab"}},
		{"b/1", []string{"b/1"}},
		{"c", nil},
		{"a/1/", nil},
	}
	for _, tc := range tests {
		got, err := s.List(ctx, tc.prefix)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
}

// testTTL: a record with a TTL expires (Get, Take and List stop seeing
// it); a long TTL and no TTL keep theirs.
func testTTL(t *testing.T, s store.Shared) {
	ctx := t.Context()
	must(t, s.Put(ctx, "ttl/short", []byte("v"), shortTTL))
	must(t, s.Put(ctx, "ttl/long", []byte("v"), time.Hour))
	must(t, s.Put(ctx, "ttl/none", []byte("v"), 0))
	wait.Until(t, deadline, "a record put with a short TTL is still there", func() bool { return gone(t, s, "ttl/short") })
	if _, err := s.Take(ctx, "ttl/short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take of an expired record: %v, want ErrNotFound", err)
	}
	if keys, err := s.List(ctx, "ttl/"); err != nil || !slices.Equal(keys, []string{"ttl/long", "ttl/none"}) {
		t.Errorf("List after the expiry = %q, %v", keys, err)
	}
	for _, k := range []string{"ttl/long", "ttl/none"} {
		if gone(t, s, k) {
			t.Errorf("%s expired", k)
		}
	}
}

// testTakeOnce: of concurrent Takes of one key, exactly one gets the
// value; the others get ErrNotFound.
func testTakeOnce(t *testing.T, s store.Shared) {
	ctx := t.Context()
	for round := range 5 {
		k := key("flows", round)
		must(t, s.Put(ctx, k, []byte(k), time.Hour))
		var wins atomic.Int32
		race(16, func(int) {
			v, err := s.Take(ctx, k)
			switch {
			case err == nil && string(v) == k:
				wins.Add(1)
			case err == nil:
				t.Errorf("Take(%q) = %q", k, v)
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("Take(%q): %v", k, err)
			}
		})
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d Takes got the value, want exactly 1", round, n)
		}
	}
}

// testBadKeys: every operation refuses a key that some backend cannot
// store (store.CheckKey's rules), with ErrInvalidKey, and stores nothing.
func testBadKeys(t *testing.T, s store.Shared) {
	ctx := t.Context()
	for _, k := range []string{"", "nul\x00inside", "!badger!head"} {
		_, errGet := s.Get(ctx, k)
		_, errTake := s.Take(ctx, k)
		_, _, errVersioned := s.GetVersioned(ctx, k)
		_, errIfVersion := s.PutIfVersion(ctx, k, []byte("v"), 0, 0)
		_, errSwap := s.CompareAndSwap(ctx, k, []byte("a"), []byte("b"))
		_, errAdd := s.Add(ctx, k, 1)
		_, errAcquire := s.Acquire(ctx, k, "holder", time.Minute)
		errs := map[string]error{
			"Put":            s.Put(ctx, k, []byte("v"), 0),
			"Get":            errGet,
			"Take":           errTake,
			"Delete":         s.Delete(ctx, k),
			"Batch":          s.Batch(ctx, []store.Write{{Key: "fine", Value: []byte("v")}, {Key: k, Value: []byte("v")}}),
			"GetVersioned":   errVersioned,
			"PutIfVersion":   errIfVersion,
			"CompareAndSwap": errSwap,
			"Add":            errAdd,
			"Acquire":        errAcquire,
		}
		for op, err := range errs {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v, want ErrInvalidKey (check keys with store.CheckKey)", op, k, err)
			}
		}
	}
	if keys, err := s.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Errorf("after refused writes the store lists %q, %v", keys, err)
	}
}

// testSwap: CompareAndSwap swaps only an existing record whose value is
// old.
func testSwap(t *testing.T, s store.Shared) {
	ctx := t.Context()
	if ok, err := s.CompareAndSwap(ctx, "missing", nil, []byte("v")); ok || err != nil {
		t.Errorf("a swap of a missing key = %v, %v; want false", ok, err)
	}
	if !gone(t, s, "missing") {
		t.Error("a swap of a missing key created it")
	}
	must(t, s.Put(ctx, "k", []byte("one"), 0))
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("other"), []byte("two")); ok || err != nil {
		t.Errorf("a swap from the wrong value = %v, %v; want false", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("one"), []byte("two")); !ok || err != nil {
		t.Errorf("a swap from the right value = %v, %v; want true", ok, err)
	}
	if v, err := s.Get(ctx, "k"); string(v) != "two" || err != nil {
		t.Errorf("after the swap Get = %q, %v", v, err)
	}
}

// testSwapOnce: of concurrent swaps from one value, exactly one wins.
func testSwapOnce(t *testing.T, s store.Shared) {
	ctx := t.Context()
	must(t, s.Put(ctx, "k", []byte("start"), 0))
	var wins atomic.Int32
	var winner atomic.Value
	race(16, func(i int) {
		mine := []byte(key("by", i))
		ok, err := s.CompareAndSwap(ctx, "k", []byte("start"), mine)
		if err != nil {
			t.Errorf("CompareAndSwap: %v", err)
		}
		if ok {
			wins.Add(1)
			winner.Store(string(mine))
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d concurrent swaps from one value won, want exactly 1", n)
	}
	if v, _ := s.Get(ctx, "k"); string(v) != winner.Load() {
		t.Errorf("the store holds %q, the winner wrote %q", v, winner.Load())
	}
}

// testSwapKeepsExpiry: a swapped record keeps its expiry.
func testSwapKeepsExpiry(t *testing.T, s store.Shared) {
	ctx := t.Context()
	withTTL(t, func(ttl time.Duration) bool {
		must(t, s.Put(ctx, "k", []byte("one"), ttl))
		ok, err := s.CompareAndSwap(ctx, "k", []byte("one"), []byte("two"))
		must(t, err)
		return refused(t, s, "k", ok)
	})
	wait.Until(t, deadline, "a swapped record lost its expiry", func() bool { return gone(t, s, "k") })
}

// refused reports whether a conditional write of key was refused because
// the record expired first, and fails the test if it was refused while
// the record is there.
func refused(t *testing.T, s store.Shared, key string, ok bool) (expiredEarly bool) {
	t.Helper()
	if ok {
		return false
	}
	if !gone(t, s, key) {
		t.Fatalf("the conditional write of %q was refused", key)
	}
	return true
}

// testBatch: a batch's puts and deletes apply in order, its TTLs apply,
// and one bad key refuses the whole batch.
func testBatch(t *testing.T, s store.Shared) {
	ctx := t.Context()
	must(t, s.Put(ctx, "log/0", []byte("old"), 0))
	must(t, s.Batch(ctx, []store.Write{
		{Key: "log/1", Value: []byte("one")},
		{Key: "log/2", Value: []byte("two"), TTL: time.Hour},
		{Key: "log/0", Delete: true},
		{Key: "log/3", Value: []byte("three")},
		{Key: "log/3", Delete: true},
		{Key: "log/4", Value: []byte("first")},
		{Key: "log/4", Value: []byte("second")},
		{Key: "log/missing", Delete: true},
		{Key: "log/5", Value: []byte("five"), TTL: shortTTL},
	}))
	if keys, _ := s.List(ctx, "log/"); !slices.Contains(keys, "log/1") || !slices.Contains(keys, "log/2") ||
		slices.Contains(keys, "log/0") || slices.Contains(keys, "log/3") {
		t.Errorf("after the batch List = %q", keys)
	}
	if v, err := s.Get(ctx, "log/4"); string(v) != "second" || err != nil {
		t.Errorf("a key put twice in a batch = %q, %v; want the second", v, err)
	}
	wait.Until(t, deadline, "a batch's put with a short TTL did not expire", func() bool { return gone(t, s, "log/5") })
	err := s.Batch(ctx, []store.Write{{Key: "log/6", Value: []byte("six")}, {Key: "", Value: []byte("x")}})
	if !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("a batch with an empty key: %v, want ErrInvalidKey", err)
	}
	if !gone(t, s, "log/6") {
		t.Error("a refused batch wrote part of itself")
	}
	must(t, s.Batch(ctx, nil))
}

// testBatchAtomic: a reader listing while batches put and delete a set
// of keys together sees all of them or none.
func testBatchAtomic(t *testing.T, s store.Shared) {
	ctx := t.Context()
	keys := []string{"set/a", "set/b", "set/c"}
	puts, deletes := make([]store.Write, len(keys)), make([]store.Write, len(keys))
	for i, k := range keys {
		puts[i] = store.Write{Key: k, Value: []byte(k)}
		deletes[i] = store.Write{Key: k, Delete: true}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			if err := s.Batch(ctx, [][]store.Write{puts, deletes}[i%2]); err != nil {
				t.Errorf("Batch: %v", err)
				return
			}
		}
	}()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			return
		default:
		}
		got, err := s.List(ctx, "set/")
		must(t, err)
		if len(got) != 0 && !slices.Equal(got, keys) {
			t.Fatalf("read %d saw part of a batch: %q", reads, got)
		}
	}
}
