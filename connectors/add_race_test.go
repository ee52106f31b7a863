package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestAddSameIDOnTwoInstances checks that two instances on one store that
// add a runtime connector of the same id before either hears of the
// other's cannot both succeed: the write is create-only, so the second
// is a conflict and the first one's connector is the one stored, on a
// store with versions and on one without.
func TestAddSameIDOnTwoInstances(t *testing.T) {
	ring, err := store.NewRing([][]byte{randomKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	for name, wrap := range map[string]func(store.Store) Storage{
		"versioned":   func(s store.Store) Storage { return unheard{s, s.(store.Versioned)} },
		"unversioned": func(s store.Store) Storage { return unversioned{s} },
	} {
		t.Run(name, func(t *testing.T) {
			shared := wrap(store.Seal(store.NewMemory(), ring))
			a, b := reopen(t, Options{}, shared), reopen(t, Options{}, shared)
			ctx := context.Background()
			if _, err := a.Add(ctx, AddRequest{Config: Config{ID: "wiki", URL: "https://a.example/mcp"}}); err != nil {
				t.Fatal(err)
			}
			_, err := b.Add(ctx, AddRequest{Config: Config{ID: "wiki", URL: "https://b.example/mcp"}})
			if re, ok := errors.AsType[*Error](err); !ok || re.Kind != KindConflict {
				t.Fatalf("the second instance's add = %v, want a conflict", err)
			}
			raw, err := shared.Get(ctx, runtimePrefix+"wiki")
			if err != nil {
				t.Fatal(err)
			}
			var e Entry
			if err := json.Unmarshal(raw, &e); err != nil || e.Config.URL != "https://a.example/mcp" {
				t.Fatalf("stored %s (%v), want the first instance's connector", raw, err)
			}
			if _, ok := b.Snapshot().Entry("wiki"); ok {
				t.Fatal("the instance whose add failed serves the connector")
			}
		})
	}
}
