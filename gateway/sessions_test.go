package gateway

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

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

// TestListNewsFormat checks the notice an instance sends of its
// upstream's list change: its own name, the connector and the method.
func TestListNewsFormat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := store.NewMemory()
	heard := make(chan string, 4)
	if err := db.Subscribe(ctx, listsChannel, func(p string) { heard <- p }); err != nil {
		t.Fatal(err)
	}
	(&ListNews{Store: db, Instance: "one", Logger: zap.NewNop()}).Tell("wiki", "notifications/tools/list_changed")
	select {
	case p := <-heard:
		if p != "one wiki notifications/tools/list_changed" {
			t.Errorf("notice %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice")
	}
}
