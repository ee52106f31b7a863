package store_test

import (
	"crypto/sha256"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/storetest"
)

// TestConformance runs the shared-store conformance suite on Memory,
// Badger, and Sealed over each.
func TestConformance(t *testing.T) {
	backends := map[string]func(t *testing.T) store.Shared{
		"memory":        func(*testing.T) store.Shared { return store.NewMemory() },
		"badger":        func(t *testing.T) store.Shared { return openBadger(t) },
		"sealed-memory": func(t *testing.T) store.Shared { return store.Seal(store.NewMemory(), ring(t)) },
		"sealed-badger": func(t *testing.T) store.Shared { return store.Seal(openBadger(t), ring(t)) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, open)
		})
	}
}

// openBadger opens a Badger in a directory of the test's own, closed
// when the test ends.
func openBadger(t *testing.T) *store.Badger {
	t.Helper()
	b, err := store.OpenBadger(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// ring returns a key ring of one fixed test key.
func ring(t *testing.T) *store.Ring {
	t.Helper()
	key := sha256.Sum256([]byte("mcpgate conformance seal key"))
	r, err := store.NewRing([][]byte{key[:]})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
