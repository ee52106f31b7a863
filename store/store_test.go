package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStores runs the same contract against every Store.
func TestStores(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"memory", func(*testing.T) Store { return NewMemory() }},
		{"badger", func(t *testing.T) Store { return openBadger(t, t.TempDir()) }},
		{"sealed-badger", func(t *testing.T) Store { return Seal(openBadger(t, t.TempDir()), testRing(t, 1)) }},
		{"sealed-memory", func(t *testing.T) Store { return Seal(NewMemory(), testRing(t, 1)) }},
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"round trip", testRoundTrip},
		{"list", testList},
		{"take once", testTakeOnce},
		{"ttl", testTTL},
		{"bad keys", testBadKeys},
		{"no aliasing", testNoAliasing},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, st.open(t))
				})
			}
		})
	}
}

func testRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	values := map[string][]byte{
		"tokens/alice/notion": []byte("access and refresh"),
		"empty":               {},
		"binary":              {0, 1, 2, 255},
		"big":                 bytes.Repeat([]byte("x"), 64<<10),
	}
	for key, value := range values {
		if err := s.Put(ctx, key, value, 0); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range values {
		if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Get(%q) = %.20q, %v; want %.20q", key, got, err, want)
		}
	}
	if err := s.Put(ctx, "empty", []byte("overwritten"), 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "empty"); string(got) != "overwritten" {
		t.Errorf("after overwrite Get = %q", got)
	}
	for _, key := range []string{"binary", "missing"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
	}
	for _, op := range []func(context.Context, string) ([]byte, error){s.Get, s.Take} {
		if _, err := op(ctx, "binary"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after Delete: %v, want ErrNotFound", err)
		}
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	keys := []string{"a/2", "b/1", "a/10", "ab", "a/1", "a"}
	for _, key := range keys {
		if err := s.Put(ctx, key, []byte(key), 0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a", "a/1", "a/10", "a/2", "ab", "b/1"}},
		{"a/", []string{"a/1", "a/10", "a/2"}},
		{"a", []string{"a", "a/1", "a/10", "a/2", "ab"}},
		{"b/1", []string{"b/1"}},
		{"c", nil},
	}
	for _, tc := range tests {
		got, err := s.List(ctx, tc.prefix)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
}

// testTakeOnce races 50 Takes of one key: exactly one gets the value.
func testTakeOnce(t *testing.T, s Store) {
	ctx := context.Background()
	for round := range 10 {
		key := fmt.Sprintf("flows/%d", round)
		if err := s.Put(ctx, key, []byte(key), time.Hour); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				value, err := s.Take(ctx, key)
				switch {
				case err == nil && string(value) == key:
					wins.Add(1)
				case !errors.Is(err, ErrNotFound):
					t.Errorf("Take = %q, %v", value, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d Takes won, want 1", round, n)
		}
	}
}

// testTTL checks that a record expires no sooner than its ttl (Badger
// counts in whole seconds) and soon after, and that others stay.
func testTTL(t *testing.T, s Store) {
	ctx := context.Background()
	const ttl = time.Second
	start := time.Now()
	if err := s.Put(ctx, "ttl/short", []byte("v"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ttl/forever", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := s.Get(ctx, "ttl/short")
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > ttl+2*time.Second {
			t.Fatal("record outlived its ttl by 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lived := time.Since(start); lived < ttl {
		t.Errorf("record expired after %v, before its ttl %v", lived, ttl)
	}
	if keys, _ := s.List(ctx, "ttl/"); !slices.Equal(keys, []string{"ttl/forever"}) {
		t.Errorf("List after expiry = %q", keys)
	}
	if _, err := s.Take(ctx, "ttl/short"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Take after expiry: %v", err)
	}
}

func testBadKeys(t *testing.T, s Store) {
	ctx := context.Background()
	for _, key := range []string{"", "a\x00b", "!badger!head"} {
		errs := map[string]error{"Put": s.Put(ctx, key, []byte("v"), 0), "Delete": s.Delete(ctx, key)}
		_, errs["Get"] = s.Get(ctx, key)
		_, errs["Take"] = s.Take(ctx, key)
		for op, err := range errs {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
			}
		}
	}
}

// testNoAliasing checks that neither the caller's slice nor a returned
// one shares memory with the store.
func testNoAliasing(t *testing.T, s Store) {
	ctx := context.Background()
	value := []byte("original")
	if err := s.Put(ctx, "k", value, 0); err != nil {
		t.Fatal(err)
	}
	copy(value, "CHANGED!")
	got, _ := s.Get(ctx, "k")
	copy(got, "CHANGED!")
	if again, _ := s.Get(ctx, "k"); string(again) != "original" {
		t.Errorf("stored value changed to %q", again)
	}
}

// TestCompareAndSwap covers both backends' Swapper.
func TestCompareAndSwap(t *testing.T) {
	for name, s := range map[string]interface {
		Store
		Swapper
	}{"memory": NewMemory(), "badger": openBadger(t, t.TempDir())} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := s.Put(ctx, "k", []byte("one"), 0); err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				old, value string
				want       bool
			}{
				{"two", "three", false},
				{"one", "two", true},
				{"one", "three", false},
			}
			for _, st := range steps {
				if ok, err := s.CompareAndSwap(ctx, "k", []byte(st.old), []byte(st.value)); ok != st.want || err != nil {
					t.Errorf("CompareAndSwap(%q, %q) = %v, %v", st.old, st.value, ok, err)
				}
			}
			if got, _ := s.Get(ctx, "k"); string(got) != "two" {
				t.Errorf("value = %q, want two", got)
			}
			if ok, err := s.CompareAndSwap(ctx, "missing", nil, []byte("x")); ok || err != nil {
				t.Errorf("swap of a missing key = %v, %v", ok, err)
			}
		})
	}
}
