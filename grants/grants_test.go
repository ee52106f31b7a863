package grants

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// mustNew compiles rules or fails the test.
func mustNew(t testing.TB, rules ...Rule) *Policy {
	t.Helper()
	p, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	alice     = Caller{ID: "alice"}
	aiUser    = Caller{ID: "carol", Groups: []string{"ai-users"}}
	anonymous = Caller{Groups: []string{"ai-users"}}
	allowed1  = Decision{Allowed: true, Rule: 1}
	allowed2  = Decision{Allowed: true, Rule: 2}
	allowed3  = Decision{Allowed: true, Rule: 3}
)

func TestDecide(t *testing.T) {
	notionAll := Rule{Sources: []string{"*"}, Connectors: []string{"notion"}}
	tests := []struct {
		name      string
		rules     []Rule
		caller    Caller
		kind      Kind
		connector string
		item      string
		readOnly  bool
		want      Decision
	}{
		// Deny by default.
		{"no rules", nil, alice, Tools, "notion", "search", true, Decision{}},
		{"no applicable rule", []Rule{{Sources: []string{"user:bob"}, Tools: []string{"**"}}}, alice, Tools, "notion", "search", true, Decision{}},
		{"unknown kind", []Rule{notionAll}, alice, "widgets", "notion", "x", true, Decision{}},
		{"empty kind", []Rule{notionAll}, alice, "", "notion", "x", true, Decision{}},
		{"empty connector", []Rule{{Sources: []string{"*"}, Tools: []string{"**"}}}, alice, Tools, "", "x", true, Decision{}},
		{"connector with slash", []Rule{{Sources: []string{"*"}, Tools: []string{"**"}}}, alice, Tools, "a/b", "c", true, Decision{}},

		// Sources, exact and separate: an identity never matches a group or
		// wildcard selector, and a comma never splits one into several.
		{"user", []Rule{{Sources: []string{"user:alice"}, Connectors: []string{"notion"}}}, alice, Tools, "notion", "x", false, allowed1},
		{"user case", []Rule{{Sources: []string{"user:alice"}, Connectors: []string{"notion"}}}, Caller{ID: "Alice"}, Tools, "notion", "x", false, Decision{}},
		{"user fold", []Rule{{Sources: []string{"user:alice"}, Connectors: []string{"notion"}}}, Caller{ID: "\u0430lice"}, Tools, "notion", "x", false, Decision{}},
		{"group", []Rule{{Sources: []string{"group:ai-users"}, Connectors: []string{"notion"}}}, aiUser, Prompts, "notion", "x", false, allowed1},
		{"identity is not a group", []Rule{{Sources: []string{"group:ai-users"}, Connectors: []string{"notion"}}}, Caller{ID: "ai-users"}, Prompts, "notion", "x", false, Decision{}},
		{"identity spelled as a group", []Rule{{Sources: []string{"group:ai-users"}, Connectors: []string{"notion"}}}, Caller{ID: "group:ai-users"}, Prompts, "notion", "x", false, Decision{}},
		{"group is not an identity", []Rule{{Sources: []string{"user:alice"}, Connectors: []string{"notion"}}}, Caller{ID: "x", Groups: []string{"alice"}}, Prompts, "notion", "x", false, Decision{}},
		{"identity star is not a wildcard", []Rule{{Sources: []string{"user:alice"}, Connectors: []string{"notion"}}}, Caller{ID: "*"}, Prompts, "notion", "x", false, Decision{}},
		{"comma list is one identity", []Rule{{Sources: []string{"user:alice"}, Connectors: []string{"notion"}}}, Caller{ID: "alice,bob"}, Prompts, "notion", "x", false, Decision{}},
		{"group with comma is one group", []Rule{{Sources: []string{"group:a"}, Connectors: []string{"notion"}}}, Caller{ID: "x", Groups: []string{"a,b", "", " a"}}, Prompts, "notion", "x", false, Decision{}},
		{"star", []Rule{notionAll}, Caller{ID: "x"}, Prompts, "notion", "x", false, allowed1},
		{"star, empty identity", []Rule{notionAll}, anonymous, Prompts, "notion", "x", false, Decision{}},
		{"group, empty identity", []Rule{{Sources: []string{"group:ai-users"}, Connectors: []string{"notion"}}}, anonymous, Prompts, "notion", "x", false, Decision{}},

		// Connectors-only rules allow every item of kinds without patterns.
		{"connectors: tool", []Rule{notionAll}, alice, Tools, "notion", "anything", false, allowed1},
		{"connectors: resource", []Rule{notionAll}, alice, Resources, "notion", "file:///x", false, allowed1},
		{"connectors: template", []Rule{notionAll}, alice, Templates, "notion", "file:///{path}", false, allowed1},
		{"connectors: other connector", []Rule{notionAll}, alice, Tools, "github", "x", false, Decision{}},
		{"connectors: prefix", []Rule{{Sources: []string{"*"}, Connectors: []string{"git"}}}, alice, Tools, "github", "x", false, Decision{}},
		{"connectors: glob", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion-*"}}}, alice, Tools, "notion-internal", "x", false, allowed1},
		{"connectors: glob needs dash", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion-*"}}}, alice, Tools, "notion", "x", false, Decision{}},
		{"connectors: star", []Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}}, alice, Prompts, "any", "x", false, allowed1},

		// Patterns narrow.
		{"narrowed tool", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"notion/search*"}}}, alice, Tools, "notion", "search-pages", false, allowed1},
		{"narrowed tool denied", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"notion/search*"}}}, alice, Tools, "notion", "create-page", false, Decision{}},
		{"narrowed, other kind all", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"notion/search*"}}}, alice, Resources, "notion", "x", false, allowed1},
		{"patterns only", []Rule{{Sources: []string{"*"}, Tools: []string{"notion/*"}}}, alice, Tools, "notion", "x", false, allowed1},
		{"patterns only, other kind none", []Rule{{Sources: []string{"*"}, Tools: []string{"notion/*"}}}, alice, Resources, "notion", "x", false, Decision{}},
		{"pattern outside connectors", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"github/*"}}}, alice, Tools, "github", "x", false, Decision{}},
		{"connectors exclude pattern", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"github/*"}}}, alice, Tools, "notion", "x", false, Decision{}},
		{"prefix connector in pattern", []Rule{{Sources: []string{"*"}, Tools: []string{"notion/*"}}}, alice, Tools, "notion-internal", "x", false, Decision{}},
		{"exact case", []Rule{{Sources: []string{"*"}, Tools: []string{"notion/search"}}}, alice, Tools, "notion", "Search", false, Decision{}},

		// Read-only grants: unknown operations arrive as false, so they count
		// as writes.
		{"read-only, read tool", []Rule{{Sources: []string{"*"}, Tools: []string{"notion/*"}, Operations: ReadOnly}}, alice, Tools, "notion", "x", true, allowed1},
		{"read-only, write tool", []Rule{{Sources: []string{"*"}, Tools: []string{"notion/*"}, Operations: ReadOnly}}, alice, Tools, "notion", "x", false, Decision{}},
		{"read-only, resource", []Rule{{Sources: []string{"*"}, Connectors: []string{"notion"}, Operations: ReadOnly}}, alice, Resources, "notion", "x", false, allowed1},
		{"read-only then full", []Rule{
			{Sources: []string{"*"}, Tools: []string{"notion/*"}, Operations: ReadOnly},
			{Sources: []string{"user:alice"}, Tools: []string{"notion/x"}},
		}, alice, Tools, "notion", "x", false, allowed2},

		// The first allowing rule is reported.
		{"first of several", []Rule{
			{Sources: []string{"user:bob"}, Tools: []string{"**"}},
			{Sources: []string{"*"}, Tools: []string{"notion/search"}},
			{Sources: []string{"*"}, Tools: []string{"notion/*"}},
		}, alice, Tools, "notion", "search", false, allowed2},
		{"later rule", []Rule{
			{Sources: []string{"user:bob"}, Tools: []string{"**"}},
			{Sources: []string{"*"}, Tools: []string{"notion/search"}},
			{Sources: []string{"*"}, Tools: []string{"notion/*"}},
		}, alice, Tools, "notion", "fetch", false, allowed3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, tt.rules...).For(tt.caller)
			got := v.Decide(tt.kind, tt.connector, tt.item, tt.readOnly)
			if got != tt.want {
				t.Errorf("Decide(%s, %q, %q, %v) = %+v, want %+v", tt.kind, tt.connector, tt.item, tt.readOnly, got, tt.want)
			}
		})
	}
}

func TestNilPolicyAndView(t *testing.T) {
	var p *Policy
	v := p.For(alice)
	var nilView *View
	for _, v := range []*View{v, nilView, mustNew(t).For(alice)} {
		if v.Allows(Tools, "notion", "x", true) || v.Visible("notion") || v.HasItems("notion") || v.IsAdmin() || v.Key() != "" {
			t.Errorf("view %+v allows something", v)
		}
	}
	if p.Connectors() != nil || p.UnknownConnectors([]string{"x"}) != nil {
		t.Error("nil policy names connectors")
	}
}

func TestVisibleHasItems(t *testing.T) {
	tests := []struct {
		name         string
		rule         Rule
		connector    string
		visible, has bool
	}{
		{"listed", Rule{Connectors: []string{"notion"}}, "notion", true, true},
		{"not listed", Rule{Connectors: []string{"notion"}}, "github", false, false},
		{"prefix", Rule{Connectors: []string{"git"}}, "github", false, false},
		{"glob", Rule{Connectors: []string{"notion-*"}}, "notion-x", true, true},
		{"pattern head", Rule{Tools: []string{"github/*"}}, "github", true, true},
		{"pattern head prefix", Rule{Tools: []string{"git/*"}}, "github", false, false},
		{"pattern elsewhere", Rule{Connectors: []string{"notion"}, Tools: []string{"github/*"}}, "github", true, false},
		{"other kinds open", Rule{Connectors: []string{"notion"}, Tools: []string{"github/*"}}, "notion", true, true},
		{"all kinds narrowed away", Rule{
			Connectors: []string{"notion"},
			Tools:      []string{"github/*"}, Resources: []string{"github/*"},
			Templates: []string{"github/*"}, Prompts: []string{"github/*"},
		}, "notion", true, false},
		{"doublestar", Rule{Prompts: []string{"**"}}, "anything", true, true},
		{"doublestar head", Rule{Prompts: []string{"**/x"}}, "anything", true, true},
		{"read-only", Rule{Tools: []string{"notion/*"}, Operations: ReadOnly}, "notion", true, true},
		{"empty connector", Rule{Tools: []string{"**"}}, "", false, false},
	}
	for _, tt := range tests {
		tt.rule.Sources = []string{"*"}
		v := mustNew(t, tt.rule).For(alice)
		if got := v.Visible(tt.connector); got != tt.visible {
			t.Errorf("%s: Visible(%q) = %v, want %v", tt.name, tt.connector, got, tt.visible)
		}
		if got := v.HasItems(tt.connector); got != tt.has {
			t.Errorf("%s: HasItems(%q) = %v, want %v", tt.name, tt.connector, got, tt.has)
		}
	}
}

func TestIsAdminAndKey(t *testing.T) {
	p := mustNew(t,
		Rule{Sources: []string{"*"}, Connectors: []string{"notion"}},
		Rule{Sources: []string{"user:root"}, Role: RoleAdmin, Connectors: []string{"*"}},
		Rule{Sources: []string{"group:ai-users"}, Role: RoleUser, Tools: []string{"**"}},
	)
	tests := []struct {
		caller Caller
		admin  bool
		key    string
	}{
		{alice, false, "1"},
		{Caller{ID: "bob"}, false, "1"},
		{Caller{ID: "root"}, true, "1,2"},
		{aiUser, false, "1,3"},
		{Caller{ID: "root", Groups: []string{"ai-users"}}, true, "1,2,3"},
		{anonymous, false, ""},
	}
	for _, tt := range tests {
		v := p.For(tt.caller)
		if v.IsAdmin() != tt.admin || v.Key() != tt.key {
			t.Errorf("For(%+v): IsAdmin %v, Key %q; want %v, %q", tt.caller, v.IsAdmin(), v.Key(), tt.admin, tt.key)
		}
	}
}

func TestConnectors(t *testing.T) {
	p := mustNew(t,
		Rule{Sources: []string{"*"}, Connectors: []string{"notion", "slack-*"}},
		Rule{Sources: []string{"*"}, Connectors: []string{"*"}, Tools: []string{"github/*", "notion/x"}},
		Rule{Sources: []string{"*"}, Resources: []string{"**", "**/x", "jira*/x"}},
	)
	wantAll := []string{"*", "github", "jira*", "notion", "slack-*"}
	if got := p.Connectors(); !slices.Equal(got, wantAll) {
		t.Errorf("Connectors() = %q, want %q", got, wantAll)
	}
	tests := []struct {
		ids  []string
		want []string
	}{
		{nil, wantAll},
		{[]string{"notion", "jira-cloud"}, []string{"github", "slack-*"}},
		{[]string{"github", "jira", "notion", "slack-eu"}, nil},
		{[]string{"githubx", "notio", "slack"}, []string{"github", "jira*", "notion", "slack-*"}},
	}
	for _, tt := range tests {
		if got := p.UnknownConnectors(tt.ids); !slices.Equal(got, tt.want) {
			t.Errorf("UnknownConnectors(%q) = %q, want %q", tt.ids, got, tt.want)
		}
	}
}

func TestDecideAllocs(t *testing.T) {
	v := mustNew(t, benchRules()...).For(benchCaller)
	allocs := testing.AllocsPerRun(100, func() {
		v.Decide(Tools, "linear", "get-issue", true)
		v.Decide(Tools, "github", "delete-repo", false)
		v.Decide(Resources, "internal", "file:///data/reports/q3.csv", false)
	})
	if allocs != 0 {
		t.Errorf("Decide allocates %v times per run, want 0", allocs)
	}
}

// TestConcurrent shares one Policy and View across goroutines; run with
// -race.
func TestConcurrent(t *testing.T) {
	p := mustNew(t, benchRules()...)
	shared := p.For(benchCaller)
	// The answers given one at a time; under -race the test also catches
	// a data race, and without it, any answer that concurrency changes.
	want := [2]Decision{shared.Decide(Tools, "notion", "search", false), shared.Decide(Tools, "notion", "search", true)}
	wantRes := shared.Decide(Resources, "internal", "file:///data/x", false)
	wantConns := p.Connectors()
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			v := p.For(benchCaller)
			for range 200 {
				if v.Decide(Tools, "notion", "search", i%2 == 1) != want[i%2] ||
					shared.Decide(Resources, "internal", "file:///data/x", false) != wantRes ||
					!slices.Equal(p.Connectors(), wantConns) {
					wrong.Add(1)
				}
				_ = shared.Visible("github") && shared.HasItems("github")
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d concurrent decisions differed from the sequential ones", n)
	}
}

func TestWhole(t *testing.T) {
	tests := []struct {
		name              string
		rules             []Rule
		connector         string
		granted, writable bool
	}{
		{"listed", []Rule{{Connectors: []string{"billing"}}}, "billing", true, true},
		{"glob", []Rule{{Connectors: []string{"bill*"}}}, "billing", true, true},
		{"listed, narrowed to some tools", []Rule{{Connectors: []string{"billing"}, Tools: []string{"billing/read"}}}, "billing", true, true},
		{"one tool only", []Rule{{Tools: []string{"billing/read"}}}, "billing", false, false},
		{"every tool by pattern", []Rule{{Tools: []string{"**"}}}, "billing", false, false},
		{"read-only", []Rule{{Connectors: []string{"billing"}, Operations: ReadOnly}}, "billing", true, false},
		{"read-only and writable", []Rule{{Connectors: []string{"billing"}, Operations: ReadOnly}, {Connectors: []string{"*"}}}, "billing", true, true},
		{"another connector", []Rule{{Connectors: []string{"notion"}}}, "billing", false, false},
		{"not for this caller", []Rule{{Sources: []string{"user:bob"}, Connectors: []string{"billing"}}}, "billing", false, false},
	}
	for _, tt := range tests {
		for i := range tt.rules {
			if tt.rules[i].Sources == nil {
				tt.rules[i].Sources = []string{"*"}
			}
		}
		granted, writable := mustNew(t, tt.rules...).For(alice).Whole(tt.connector)
		if granted != tt.granted || writable != tt.writable {
			t.Errorf("%s: Whole(%q) = %v, %v, want %v, %v", tt.name, tt.connector, granted, writable, tt.granted, tt.writable)
		}
	}
	if g, w := (*View)(nil).Whole("billing"); g || w {
		t.Error("a nil view grants a whole connector")
	}
}

func TestSplitList(t *testing.T) {
	tests := map[string]string{
		"":                   "",
		"a":                  "a",
		"d,b c\ta":           "a|b|c|d",
		" a,,a , b ":         "a|b",
		"ai-users,ai-users ": "ai-users",
	}
	for in, want := range tests {
		if got := strings.Join(SplitList(in), "|"); got != want {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}
