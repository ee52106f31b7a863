package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestBatch covers both backends' Batcher: puts and deletes apply in
// order, expiry is kept, and a bad key rejects the whole batch.
func TestBatch(t *testing.T) {
	for name, s := range map[string]interface {
		Store
		Batcher
	}{"memory": NewMemory(), "badger": openBadger(t, t.TempDir())} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := s.Put(ctx, "log/0", []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			err := s.Batch(ctx, []Write{
				{Key: "log/1", Value: []byte("one")},
				{Key: "log/2", Value: []byte("two"), TTL: time.Hour},
				{Key: "log/0", Delete: true},
				{Key: "log/3", Value: []byte("three")},
				{Key: "log/3", Delete: true},
				{Key: "log/missing", Delete: true},
			})
			if err != nil {
				t.Fatal(err)
			}
			if keys, _ := s.List(ctx, "log/"); !slices.Equal(keys, []string{"log/1", "log/2"}) {
				t.Errorf("after the batch: %q", keys)
			}
			if v, err := s.Get(ctx, "log/2"); string(v) != "two" || err != nil {
				t.Errorf("log/2 = %q, %v", v, err)
			}
			err = s.Batch(ctx, []Write{{Key: "log/4", Value: []byte("four")}, {Key: "", Value: []byte("x")}})
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("a batch with an empty key: %v", err)
			}
			if _, err := s.Get(ctx, "log/4"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a rejected batch wrote part of itself: %v", err)
			}
		})
	}
}

// TestBatchExpires checks that a batch's TTL expires its record.
func TestBatchExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemoryClock(func() time.Time { return now })
	ctx := context.Background()
	if err := m.Batch(ctx, []Write{{Key: "k", Value: []byte("v"), TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after its TTL: %v", err)
	}
}

// TestClearRecords checks that a Sealed leaves the records under
// ClearPrefix alone: it does not list them, so neither the key check nor
// Rewrap takes them for damaged sealed records, and it refuses them by key.
func TestClearRecords(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	clear := ClearPrefix + "audit/00000000000000000001"
	if err := inner.Put(ctx, clear, []byte(`{"kind":"tool_call"}`), 0); err != nil {
		t.Fatal(err)
	}
	s := Seal(inner, testRing(t, 1))
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check beside a clear record: %v", err)
	}
	putN(t, s, "tokens", 1)
	if keys, _ := s.List(ctx, ""); slices.Contains(keys, clear) {
		t.Errorf("Sealed.List shows the clear record: %q", keys)
	}
	rotated := Seal(inner, testRing(t, 2, 1))
	// The key check and tokens/0 move onto the new key; the clear record
	// is neither rewrapped nor counted as a failure.
	if n, err := rotated.Rewrap(ctx); n != 2 || err != nil {
		t.Errorf("Rewrap beside a clear record = %d, %v; want 2, nil", n, err)
	}
	if lost, err := Seal(inner, testRing(t, 2)).Unopenable(ctx); err != nil || slices.Contains(lost, clear) {
		t.Errorf("Unopenable = %q, %v", lost, err)
	}
	errs := map[string]error{"Put": s.Put(ctx, clear, []byte("v"), 0), "Delete": s.Delete(ctx, clear)}
	_, errs["Get"] = s.Get(ctx, clear)
	_, errs["Take"] = s.Take(ctx, clear)
	for op, err := range errs {
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Sealed.%s(%q) = %v, want ErrInvalidKey", op, clear, err)
		}
	}
	if v, err := inner.Get(ctx, clear); string(v) != `{"kind":"tool_call"}` || err != nil {
		t.Errorf("the clear record changed: %q, %v", v, err)
	}
}

// TestSealedBatch checks that a Sealed's batch seals each put bound to its
// key, applies the writes in one batch of the inner store, refuses the
// whole batch for one clear key, and needs an inner store that batches.
func TestSealedBatch(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	s := Seal(inner, testRing(t, 1))
	if err := s.Put(ctx, "grants/a", []byte("token"), 0); err != nil {
		t.Fatal(err)
	}
	err := s.Batch(ctx, []Write{
		{Key: "grants/a", Value: []byte("no token")},
		{Key: "revoke/1", Value: []byte("token"), TTL: time.Hour},
		{Key: "flows/1", Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"grants/a": "no token", "revoke/1": "token"} {
		if v, err := s.Get(ctx, key); string(v) != want || err != nil {
			t.Errorf("%s = %q, %v; want %q", key, v, err, want)
		}
		if blob, _ := inner.Get(ctx, key); bytes.Contains(blob, []byte("token")) {
			t.Errorf("%s is stored in the clear", key)
		}
	}
	// Each put is bound to its own key: moved to another, it does not open.
	blob, _ := inner.Get(ctx, "revoke/1")
	if err := inner.Put(ctx, "revoke/2", blob, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "revoke/2"); !errors.Is(err, ErrTampered) {
		t.Errorf("a batch record moved to another key: %v", err)
	}
	for _, w := range []Write{{Key: ClearPrefix + "x", Value: []byte("v")}, {Key: ClearPrefix + "x", Delete: true}, {Key: ""}} {
		err := s.Batch(ctx, []Write{{Key: "grants/b", Value: []byte("v")}, w})
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("a batch with %+v: %v", w, err)
		}
	}
	if _, err := s.Get(ctx, "grants/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused batch wrote part of itself: %v", err)
	}
	if err := Seal(struct{ Store }{inner}, testRing(t, 1)).Batch(ctx, nil); err == nil {
		t.Error("a batch over a store that cannot batch succeeded")
	}
}
