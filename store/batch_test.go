package store

import (
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
