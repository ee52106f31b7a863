package connectors

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/postgres"
)

// unheard is a shared store that carries no notices and counts no
// changes, with or without versions: registries on it never hear of each
// other's grants, as instances do whose notices have not arrived yet.
type unheard struct {
	Storage
	store.Versioned
}

// unversioned is a store without versions, as a backend that offers
// nothing beyond Storage.
type unversioned struct{ Storage }

// idsThen is a source of grant ids that gives ids in turn, then random
// ones.
func idsThen(ids ...string) func() string {
	return func() string {
		if len(ids) == 0 {
			return randomGrantID()
		}
		id := ids[0]
		ids = ids[1:]
		return id
	}
}

// grantsByID reads the grants stored in s, as a registry opened on it
// afresh finds them, by id to reason.
func grantsByID(t *testing.T, s Storage) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, g := range reopen(t, Options{}, s).Snapshot().Grants {
		out[g.ID] = g.Reason
	}
	return out
}

// TestGrantIDCollision checks that a runtime grant is stored create-only:
// a registry that picks the id another instance just took, which its
// snapshot does not show yet, keeps the other's grant and takes another
// id, on a store with versions and on one without; and that a store on
// which every id is taken fails the add rather than overwrite.
func TestGrantIDCollision(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared func(*store.Sealed) Storage
	}{
		{"versioned", func(s *store.Sealed) Storage { return unheard{s, s} }},
		{"unversioned", func(s *store.Sealed) Storage { return unversioned{s} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, _ := sealedMemory(t)
			shared := tc.shared(sealed)
			a, b := reopen(t, Options{}, shared), reopen(t, Options{}, shared)
			a.grantID, b.grantID = idsThen("g-same"), idsThen("g-same")
			first, second := mustGrant(t, a, "a's"), mustGrant(t, b, "b's")
			if first.ID != "g-same" || second.ID == "g-same" {
				t.Fatalf("the grants took ids %s and %s; want g-same and another", first.ID, second.ID)
			}
			if got := grantsByID(t, shared); len(got) != 2 || got["g-same"] != "a's" || got[second.ID] != "b's" {
				t.Fatalf("stored grants = %v; want a's under g-same and b's under %s", got, second.ID)
			}

			b.grantID = func() string { return "g-same" }
			if _, err := b.AddGrant(context.Background(), bobsGrant("never stored")); kindOf(err) != KindStorage ||
				!strings.Contains(err.Error(), "was taken") {
				t.Fatalf("AddGrant with every id taken = %v (kind %d)", err, kindOf(err))
			}
			if got := grantsByID(t, shared); len(got) != 2 || got["g-same"] != "a's" {
				t.Fatalf("after the refused add, stored grants = %v", got)
			}
		})
	}
}

// TestGrantsConcurrent checks that two registries on one store, as two
// instances on one PostgreSQL, adding grants at once never lose one, on
// every backend: each picks ids the other picks too (every other id of
// one sequence, the same for both), and neither hears of the other's
// grants, so that only the store's create-only write keeps them apart.
func TestGrantsConcurrent(t *testing.T) {
	ring, err := store.NewRing([][]byte{randomKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return store.NewMemory() },
		"badger": func(t *testing.T) store.Store {
			db, err := store.OpenBadger(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		},
		"postgres": func(t *testing.T) store.Store {
			db, err := postgres.Open(t.Context(), pgtest.Start(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		},
	} {
		t.Run(name, func(t *testing.T) {
			sealed := store.Seal(open(t), ring)
			shared := unheard{sealed, sealed}
			want := addAtOnce(t, reopen(t, Options{}, shared), reopen(t, Options{}, shared))
			got := grantsByID(t, shared)
			for id, reason := range want {
				if got[id] != reason {
					t.Errorf("grant %s holds %q; want %q", id, got[id], reason)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d grants stored; want %d", len(got), len(want))
			}
		})
	}
}

// addAtOnce adds grants through each registry at once, each picking the
// ids g-0, g-1 ... on every other try and a random one between, and
// returns the grants added, by id to reason.
func addAtOnce(t *testing.T, regs ...*Registry) map[string]string {
	t.Helper()
	const each = 10
	var mu sync.Mutex
	added := map[string]string{}
	var wg sync.WaitGroup
	for i, r := range regs {
		tries := 0
		r.grantID = func() string {
			tries++
			if tries%2 == 1 {
				return fmt.Sprintf("g-%d", tries/2)
			}
			return randomGrantID()
		}
		wg.Go(func() {
			for n := range each {
				reason := fmt.Sprintf("registry %d, grant %d", i, n)
				g, err := r.AddGrant(context.Background(), bobsGrant(reason))
				if err != nil {
					t.Errorf("AddGrant: %v", err)
					return
				}
				mu.Lock()
				added[g.ID] = reason
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(added) != each*len(regs) {
		t.Fatalf("%d grants added under distinct ids; want %d", len(added), each*len(regs))
	}
	return added
}
