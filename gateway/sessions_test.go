package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestSessionEnds checks the tombstones and notices of ended sessions on
// a store two instances would share: an end is recorded for as long as
// an id can be valid, and the other instance hears of it.
func TestSessionEnds(t *testing.T) {
	ctx := context.Background()
	db := store.NewMemory()
	ends := SessionEnds{Store: db}
	heard := make(chan string, 1)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := db.Subscribe(subCtx, endedChannel, func(tag string) { heard <- tag }); err != nil {
		t.Fatal(err)
	}
	if ended, err := ends.Ended(ctx, "abc"); ended || err != nil {
		t.Fatalf("Ended before End = %v, %v", ended, err)
	}
	if err := ends.End(ctx, "abc"); err != nil {
		t.Fatal(err)
	}
	if ended, err := ends.Ended(ctx, "abc"); !ended || err != nil {
		t.Fatalf("Ended after End = %v, %v", ended, err)
	}
	select {
	case tag := <-heard:
		if tag != "abc" {
			t.Errorf("the notice said %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice of the end")
	}
	if ended, _ := (SessionEnds{Store: store.NewMemory()}).Ended(ctx, "abc"); ended {
		t.Error("another store knows of the end")
	}
}
