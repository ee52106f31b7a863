package storetest

import (
	"slices"
	"sync"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// testAdd: a counter starts at zero, Add returns the new count, adding
// zero reads it, and counters under different keys are apart.
func testAdd(t *testing.T, s store.Shared) {
	ctx := t.Context()
	steps := []struct {
		key  string
		n    uint64
		want uint64
	}{
		{"gen", 0, 0},
		{"gen", 5, 5},
		{"gen", 0, 5},
		{"other", 1, 1},
		{"gen", 2, 7},
		{"other", 1 << 40, 1<<40 + 1},
	}
	for _, st := range steps {
		if got, err := s.Add(ctx, st.key, st.n); got != st.want || err != nil {
			t.Errorf("Add(%q, %d) = %d, %v; want %d", st.key, st.n, got, err, st.want)
		}
	}
}

// testAddConcurrent: concurrent adds sum exactly, and each sees a count
// of its own.
func testAddConcurrent(t *testing.T, s store.Shared) {
	ctx := t.Context()
	const workers, each = 8, 20
	var mu sync.Mutex
	var counts []uint64
	race(workers, func(int) {
		for range each {
			n, err := s.Add(ctx, "hits", 1)
			if err != nil {
				t.Errorf("Add: %v", err)
				return
			}
			mu.Lock()
			counts = append(counts, n)
			mu.Unlock()
		}
	})
	if n, err := s.Add(ctx, "hits", 0); n != workers*each || err != nil {
		t.Fatalf("after %d adds of 1 the count is %d, %v", workers*each, n, err)
	}
	slices.Sort(counts)
	for i, n := range counts {
		if n != uint64(i+1) {
			t.Fatalf("the adds returned %v: two saw the same count or one skipped", counts)
		}
	}
}
