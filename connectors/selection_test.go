package connectors

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestSealPlainSelections checks the upgrade of tool selections that an
// earlier version stored in the clear: each is sealed once, in place, with
// its content intact, and a key rotation then rewraps it like any record.
func TestSealPlainSelections(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := randomKey(t), randomKey(t)
	oldRing, err := store.NewRing([][]byte{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	db := store.NewMemory()
	sealed := store.Seal(db, oldRing)
	plain := []byte(`{"tools":{"echo":{"operation":"read","definition":{"name":"echo"},"pin":"abc"}},"updated":"2026-01-02T03:04:05Z"}`)
	if err := db.Put(ctx, selectionPrefix+"legacy", plain, 0); err != nil {
		t.Fatal(err)
	}
	if err := sealed.Put(ctx, selectionPrefix+"current", []byte(`{"tools":{}}`), 0); err != nil {
		t.Fatal(err)
	}

	if n, err := SealPlainSelections(ctx, db, sealed); err != nil || n != 1 {
		t.Fatalf("first upgrade: %d sealed, %v; want 1", n, err)
	}
	if n, err := SealPlainSelections(ctx, db, sealed); err != nil || n != 0 {
		t.Fatalf("second upgrade: %d sealed, %v; want 0", n, err)
	}
	if got, err := sealed.Get(ctx, selectionPrefix+"legacy"); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("the upgraded selection reads %q, %v", got, err)
	}

	ring, err := store.NewRing([][]byte{newKey, oldKey})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := store.Seal(db, ring).Rewrap(ctx); err != nil || n != 2 {
		t.Fatalf("rewrap: %d, %v; want both selections", n, err)
	}
	newOnly, err := store.NewRing([][]byte{newKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"legacy", "current"} {
		if _, err := store.Seal(db, newOnly).Get(ctx, selectionPrefix+id); err != nil {
			t.Errorf("selection %s after the rotation: %v", id, err)
		}
	}
}

func randomKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}
