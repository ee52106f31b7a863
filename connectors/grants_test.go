package connectors

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// configRules are the config's grants in the tests of runtime grants.
var configRules = []grants.Rule{
	{Sources: []string{"*"}, Connectors: []string{"wiki"}},
	{Sources: []string{"user:alice"}, Role: grants.RoleAdmin, Connectors: []string{"wiki"}},
}

// bobsGrant is a runtime grant of wiki's read-only tools to bob.
func bobsGrant(reason string) GrantRequest {
	return GrantRequest{
		Rule:   grants.Rule{Sources: []string{"user:bob"}, Tools: []string{"wiki/*"}, Operations: grants.ReadOnly},
		Reason: reason, By: "127.0.0.1:5555",
	}
}

// reopen opens another registry of o on s, as a restart or another
// instance does, closed when the test ends.
func reopen(t testing.TB, o Options, s Storage) *Registry {
	t.Helper()
	r := openRegistry(t, o, s)
	t.Cleanup(r.Close)
	return r
}

// mustGrant adds bobsGrant, failing the test on an error.
func mustGrant(t *testing.T, r *Registry, reason string) Grant {
	t.Helper()
	g, err := r.AddGrant(context.Background(), bobsGrant(reason))
	if err != nil {
		t.Fatalf("adding a grant: %v", err)
	}
	return g
}

// grantNames lists the names of snap's grants, in order.
func grantNames(snap *Snapshot) []string {
	var names []string
	for _, g := range snap.Grants {
		names = append(names, g.Name())
	}
	return names
}

// TestGrantsPersist checks that a runtime grant is kept with its reason,
// who added it and when, after the config's grants; that adding and
// removing it are announced as changes of what the gateway serves; and
// that a registry opened again on the same storage finds it.
func TestGrantsPersist(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r, err := NewRegistry(Options{Grants: configRules})
	if err != nil {
		t.Fatal(err)
	}
	var announced []*Snapshot
	r.Watch(func(s *Snapshot) error { announced = append(announced, s); return nil })
	if err := r.Open(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	if names := grantNames(r.Snapshot()); strings.Join(names, ",") != "1,2" {
		t.Fatalf("the config's grants are %v", names)
	}
	gen := r.Snapshot().Generation

	before := time.Now().UTC()
	g := mustGrant(t, r, "  on call this week ")
	if !regexp.MustCompile(`^g-[a-z2-7]{13}$`).MatchString(g.ID) || !g.Runtime || g.Reason != "on call this week" ||
		g.By != "127.0.0.1:5555" || g.Created.Before(before) || g.Sources[0] != "user:bob" {
		t.Fatalf("the grant added = %+v", g)
	}
	snap := r.Snapshot()
	if names := grantNames(snap); strings.Join(names, ",") != "1,2,"+g.ID || snap.Generation != gen+1 {
		t.Fatalf("after AddGrant the grants are %v, generation %d (was %d)", names, snap.Generation, gen)
	}
	if last := announced[len(announced)-1]; last != snap {
		t.Fatal("the grant was not announced to the watcher")
	}
	second := mustGrant(t, r, "second")

	reopened := reopen(t, Options{Grants: configRules}, sealed)
	got, ok := reopened.Snapshot().Grant(g.ID)
	if !ok || got.Reason != g.Reason || got.By != g.By || !got.Created.Equal(g.Created) || !got.Runtime || got.Tools[0] != "wiki/*" {
		t.Fatalf("reopened, the grant is %+v, %v", got, ok)
	}
	if names := grantNames(reopened.Snapshot()); strings.Join(names, ",") != "1,2,"+g.ID+","+second.ID {
		t.Fatalf("reopened, the grants are %v: the runtime ones come after the config's, oldest first", names)
	}

	removed, err := r.RemoveGrant(ctx, g.ID)
	if err != nil || removed.ID != g.ID {
		t.Fatalf("RemoveGrant = %+v, %v", removed, err)
	}
	if _, ok := r.Snapshot().Grant(g.ID); ok || r.Snapshot().Generation != gen+3 {
		t.Fatalf("after RemoveGrant: grants %v, generation %d", grantNames(r.Snapshot()), r.Snapshot().Generation)
	}
	if names := grantNames(reopen(t, Options{Grants: configRules}, sealed).Snapshot()); strings.Join(names, ",") != "1,2,"+second.ID {
		t.Fatalf("reopened after the removal, the grants are %v", names)
	}
}

// TestGrantErrors checks what AddGrant and RemoveGrant refuse, by kind,
// and that a refused grant leaves nothing in storage.
func TestGrantErrors(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := reopen(t, Options{Grants: configRules}, sealed)
	badGlob := bobsGrant("why not")
	badGlob.Tools = []string{"wiki/a**"}
	noSources := bobsGrant("why not")
	noSources.Sources = nil
	for _, tc := range []struct {
		name string
		req  GrantRequest
		says string
	}{
		{"no reason", bobsGrant(""), "needs a reason"},
		{"a blank reason", bobsGrant(" \t "), "needs a reason"},
		{"a control character", bobsGrant("ok\nforged audit line"), "control character"},
		{"a long reason", bobsGrant(strings.Repeat("x", maxReason+1)), "longer than"},
		{"a bad glob", badGlob, `grant: tools: pattern "wiki/a**"`},
		{"no sources", noSources, "grant names no sources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.AddGrant(ctx, tc.req)
			if kindOf(err) != KindInvalid || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("AddGrant = %v (kind %d), want KindInvalid saying %q", err, kindOf(err), tc.says)
			}
		})
	}
	if keys, _ := sealed.List(ctx, grantPrefix); len(keys) != 0 {
		t.Fatalf("refused grants left %v in storage", keys)
	}

	if _, err := r.RemoveGrant(ctx, "g-00000000"); kindOf(err) != KindNotFound || !strings.Contains(err.Error(), `no grant "g-00000000"`) {
		t.Fatalf("removing an unknown grant: %v", err)
	}
	if _, err := r.RemoveGrant(ctx, "2"); kindOf(err) != KindConflict || !strings.Contains(err.Error(), "change it in the Caddyfile") {
		t.Fatalf("removing a config grant: %v", err)
	}
	if _, err := r.RemoveGrant(ctx, "3"); kindOf(err) != KindNotFound {
		t.Fatalf("removing a config grant past the last: %v", err)
	}

	unopened, _ := NewRegistry(Options{})
	if _, err := unopened.AddGrant(ctx, bobsGrant("why")); kindOf(err) != KindStorage {
		t.Fatalf("AddGrant before Open: %v", err)
	}
}

// TestGrantWatcherUndoes checks that a grant change the watcher refuses
// is undone in storage too, so that the next Open does not apply it.
func TestGrantWatcherUndoes(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	r := reopen(t, Options{}, sealed)
	kept := mustGrant(t, r, "kept")
	r.Watch(func(*Snapshot) error { return errRefused })
	if _, err := r.AddGrant(ctx, bobsGrant("refused")); !errors.Is(err, errRefused) {
		t.Fatalf("AddGrant = %v, want the watcher's error", err)
	}
	if _, err := r.RemoveGrant(ctx, kept.ID); !errors.Is(err, errRefused) {
		t.Fatalf("RemoveGrant = %v, want the watcher's error", err)
	}
	for _, s := range []*Snapshot{r.Snapshot(), reopen(t, Options{}, sealed).Snapshot()} {
		if names := grantNames(s); len(names) != 1 || names[0] != kept.ID {
			t.Fatalf("after refusals the grants are %v, want only %s", names, kept.ID)
		}
	}
}

// TestFollowGrants checks that two registries sharing a store, as two
// instances share PostgreSQL, apply each other's grants and removals: on
// the notice, and by the poll when notices are lost.
func TestFollowGrants(t *testing.T) {
	sealed, _ := sealedMemory(t)
	for _, tc := range []struct {
		name   string
		shared Storage
		poll   time.Duration
	}{
		{"notices", sealed, 0},
		{"poll", deaf{sealed, sealed}, 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Grants: configRules, Poll: tc.poll}
			a, b := reopen(t, o, tc.shared), reopen(t, o, tc.shared)
			g := mustGrant(t, a, "follow "+tc.name)
			wait.Until(t, 10*time.Second, "b applies a's grant", func() bool {
				got, ok := b.Snapshot().Grant(g.ID)
				return ok && got.Reason == g.Reason
			})
			if _, err := b.RemoveGrant(context.Background(), g.ID); err != nil {
				t.Fatal(err)
			}
			wait.Until(t, 10*time.Second, "a forgets the grant b removed", func() bool { _, ok := a.Snapshot().Grant(g.ID); return !ok })
		})
	}
}

// TestGrantIDFromKey checks that a stored grant is named by its key,
// whatever its record says, so that a record cannot take another's name.
func TestGrantIDFromKey(t *testing.T) {
	ctx := context.Background()
	sealed, _ := sealedMemory(t)
	raw := `{"src":["user:eve"],"connectors":["wiki"],"id":"g-11111111","reason":"r","created":"2025-01-01T00:00:00Z"}`
	if err := sealed.Put(ctx, grantPrefix+"g-22222222", []byte(raw), 0); err != nil {
		t.Fatal(err)
	}
	r := reopen(t, Options{}, sealed)
	if names := grantNames(r.Snapshot()); len(names) != 1 || names[0] != "g-22222222" {
		t.Fatalf("the grants are %v", names)
	}
}
