package grants

import (
	"strings"
	"testing"
)

func TestNeedsApproval(t *testing.T) {
	p, err := New([]Rule{
		{Sources: []string{"group:ai"}, Connectors: []string{"bank"}, Approve: []string{ApproveWrites}},
		{Sources: []string{"group:ai"}, Connectors: []string{"wiki"}, Approve: []string{"wiki/search"}},
		{Sources: []string{"user:root"}, Connectors: []string{"bank", "wiki"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ai := p.For(Caller{ID: "bob", Groups: []string{"ai"}})
	root := p.For(Caller{ID: "root"})
	both := p.For(Caller{ID: "root", Groups: []string{"ai"}})
	for _, tc := range []struct {
		v               *View
		conn, tool      string
		readOnly, wants bool
	}{
		{ai, "bank", "transfer", false, true},
		{ai, "bank", "balance", true, false}, // a read-only tool never asks
		{ai, "wiki", "search", true, true},   // unless a glob names it
		{ai, "wiki", "edit", false, false},
		{root, "bank", "transfer", false, false},
		{both, "bank", "transfer", false, true}, // the stricter grant holds
		{ai, "other", "x", false, false},        // not allowed at all
	} {
		if got := tc.v.NeedsApproval(tc.conn, tc.tool, tc.readOnly); got != tc.wants {
			t.Errorf("NeedsApproval(%s/%s, readOnly %v) = %v", tc.conn, tc.tool, tc.readOnly, got)
		}
	}
}

func TestApproveValidation(t *testing.T) {
	for _, bad := range []string{"writes", "bank", "bank/**x", ""} {
		err := Rule{Sources: []string{"*"}, Connectors: []string{"bank"}, Approve: []string{bad}}.Validate()
		if err == nil || !strings.Contains(err.Error(), "approve") {
			t.Errorf("approve %q: %v", bad, err)
		}
	}
	if err := (Rule{Sources: []string{"*"}, Connectors: []string{"bank"}, Approve: []string{"write", "bank/*"}}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestGeneration(t *testing.T) {
	r := []Rule{{Sources: []string{"*"}, Connectors: []string{"bank"}}}
	a, _ := New(r)
	b, _ := New(r)
	r[0].Approve = []string{"write"}
	c, _ := New(r)
	if a.Generation() == "" || a.Generation() != b.Generation() || a.Generation() == c.Generation() {
		t.Errorf("generations %q %q %q", a.Generation(), b.Generation(), c.Generation())
	}
}

func TestSources(t *testing.T) {
	s, err := CompileSources([]string{"group:security", "user:bob"})
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[*Caller]bool{
		{ID: "bob"}: true, {ID: "eve", Groups: []string{"security"}}: true,
		{ID: "eve"}: false, {ID: "", Groups: []string{"security"}}: false, {ID: "security"}: false,
	} {
		if s.Match(*c) != want {
			t.Errorf("Match(%+v) = %v", *c, !want)
		}
	}
	if _, err := CompileSources([]string{"bob"}); err == nil {
		t.Error("a bad source compiled")
	}
}
