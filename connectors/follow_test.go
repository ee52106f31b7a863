package connectors

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestFollowNotices checks that two registries sharing a store, as two
// instances share PostgreSQL, apply each other's changes on the notice
// that every change sends.
func TestFollowNotices(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	a := openRegistry(t, Options{}, sealed)
	b := openRegistry(t, Options{}, sealed)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	mustAdd(t, a, "wiki")
	wait.Until(t, 10*time.Second, "b sees a's connector", func() bool { _, ok := b.Snapshot().Entry("wiki"); return ok })
	if _, err := b.Select(ctx, "wiki", listed, []Want{{Name: "search"}}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "a sees b's selection", func() bool { return a.Snapshot().Selection("wiki") != nil })
	if news, err := a.Drifted(ctx, "wiki", "search", searchChanged); !news || err != nil {
		t.Fatalf("Drifted = %v, %v", news, err)
	}
	wait.Until(t, 10*time.Second, "b sees the drift a saw", func() bool {
		sel := b.Snapshot().Selection("wiki")
		return sel != nil && len(sel.Drifted()) == 1
	})
	if err := a.Remove(ctx, "wiki", func(Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "b forgets the removed connector", func() bool { _, ok := b.Snapshot().Entry("wiki"); return !ok })
}

// deaf is a shared store whose notices are lost: it carries none.
type deaf struct {
	store.Store
	store.Adder
}

// TestFollowPoll checks the fallback for a lost notice: a registry that
// polls the shared generation applies another's change all the same.
func TestFollowPoll(t *testing.T) {
	sealed, _ := sealedMemory(t)
	shared := deaf{sealed, sealed}
	a := openRegistry(t, Options{Poll: 20 * time.Millisecond}, shared)
	b := openRegistry(t, Options{Poll: 20 * time.Millisecond}, shared)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	gen := b.Snapshot().Generation
	mustAdd(t, a, "wiki")
	wait.Until(t, 10*time.Second, "b polls a's connector in", func() bool { _, ok := b.Snapshot().Entry("wiki"); return ok })
	// Its own changes do not make it reload: the poll has seen them.
	time.Sleep(100 * time.Millisecond)
	settled := a.Snapshot().Generation
	mustAdd(t, a, "notes")
	time.Sleep(100 * time.Millisecond)
	if a.Snapshot().Generation != settled+1 {
		t.Errorf("a's generation went %d -> %d for one change of its own", settled, a.Snapshot().Generation)
	}
	if b.Snapshot().Generation <= gen {
		t.Errorf("b's generation stayed %d", gen)
	}
}
