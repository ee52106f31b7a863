package grants

import (
	"fmt"
	"testing"
)

// TestForCachesView: For makes one view per caller and Policy, and a
// caller whose groups differ gets its own.
func TestForCachesView(t *testing.T) {
	p := mustNew(t,
		Rule{Sources: []string{"group:staff"}, Tools: []string{"notion/*"}},
		Rule{Sources: []string{"user:alice"}, Tools: []string{"github/*"}},
	)
	alice := Caller{ID: "alice"}
	if p.For(alice) != p.For(alice) {
		t.Error("two views for the same caller")
	}
	staff := Caller{ID: "alice", Groups: []string{"staff"}}
	if p.For(staff) == p.For(alice) {
		t.Error("a caller in a group shares the view of the same ID in none")
	}
	if !p.For(staff).Allows(Tools, "notion", "search", false) || p.For(alice).Allows(Tools, "notion", "search", false) {
		t.Error("the cached views decide as their groups say")
	}
}

// TestForCacheKeyUnambiguous: callers whose ID and groups read the same
// once joined get views of their own.
func TestForCacheKeyUnambiguous(t *testing.T) {
	p := mustNew(t, Rule{Sources: []string{"group:b"}, Tools: []string{"notion/*"}})
	member := Caller{ID: "a", Groups: []string{"b"}}
	for _, c := range []Caller{{ID: "ab"}, {ID: "a\x01b"}, {ID: "a", Groups: []string{"", "b2"}}} {
		p.For(member)
		if p.For(c).Allows(Tools, "notion", "search", false) {
			t.Errorf("%q in %q gets the view of a in group b", c.ID, c.Groups)
		}
	}
	if !p.For(member).Allows(Tools, "notion", "search", false) {
		t.Error("a in group b lost its grant")
	}
}

// TestForNewPolicyNewViews: a view cached by one Policy never answers for
// the next, as after a reload that withdraws a grant.
func TestForNewPolicyNewViews(t *testing.T) {
	alice := Caller{ID: "alice"}
	before := mustNew(t, Rule{Sources: []string{"user:alice"}, Tools: []string{"github/*"}})
	if !before.For(alice).Allows(Tools, "github", "get", false) {
		t.Fatal("the first policy does not allow github/get")
	}
	after := mustNew(t, Rule{Sources: []string{"user:bob"}, Tools: []string{"github/*"}})
	if after.For(alice).Allows(Tools, "github", "get", false) {
		t.Error("the new policy answers from the old policy's view")
	}
}

// TestForCacheBounded: many distinct callers do not grow the cache past
// its bound, and each still gets its own decisions.
func TestForCacheBounded(t *testing.T) {
	p := mustNew(t, Rule{Sources: []string{"user:u7"}, Tools: []string{"github/*"}})
	for i := range 2*maxCachedViews + 10 {
		c := Caller{ID: fmt.Sprintf("u%d", i)}
		if got := p.For(c).Allows(Tools, "github", "get", false); got != (i == 7) {
			t.Fatalf("caller %s: allowed %v", c.ID, got)
		}
	}
	if n := p.views.len(); n > maxCachedViews {
		t.Errorf("%d views cached, want at most %d", n, maxCachedViews)
	}
	if !p.For(Caller{ID: "u7"}).Allows(Tools, "github", "get", false) {
		t.Error("u7 lost its grant once the cache started over")
	}
}
