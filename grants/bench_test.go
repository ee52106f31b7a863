package grants

import "testing"

// benchCaller is in two groups, as a typical agent user is.
var benchCaller = Caller{ID: "alice@example.com", Groups: []string{"staff", "ai-users"}}

// benchRules is a realistic policy of ten rules, most of which apply to
// benchCaller.
func benchRules() []Rule {
	return []Rule{
		{Sources: []string{"group:admins"}, Role: RoleAdmin, Connectors: []string{"*"}},
		{Sources: []string{"group:ai-users", "user:bob@example.com"}, Connectors: []string{"notion", "internal"}, Tools: []string{"notion/search*", "notion/fetch", "internal/**"}},
		{Sources: []string{"*"}, Resources: []string{"internal/file:///data/**"}, Templates: []string{"internal/*"}},
		{Sources: []string{"group:staff"}, Tools: []string{"github/get-*", "github/list-*", "github/search-*"}, Operations: ReadOnly},
		{Sources: []string{"group:staff"}, Prompts: []string{"**"}},
		{Sources: []string{"user:carol@example.com"}, Connectors: []string{"slack"}},
		{Sources: []string{"group:ai-users"}, Tools: []string{"jira-*/*-issue", "jira-*/search"}},
		{Sources: []string{"group:sales"}, Connectors: []string{"salesforce", "hubspot"}},
		{Sources: []string{"*"}, Tools: []string{"docs/**/read*"}},
		{Sources: []string{"group:ai-users"}, Tools: []string{"linear/*"}, Operations: ReadOnly},
	}
}

func BenchmarkAllows(b *testing.B) {
	v := mustNew(b, benchRules()...).For(benchCaller)
	cases := []struct {
		name            string
		kind            Kind
		connector, item string
		readOnly        bool
	}{
		{"early tool", Tools, "notion", "search-pages", false},
		{"late tool", Tools, "linear", "get-issue", true},
		{"denied tool", Tools, "github", "delete-repo", false},
		{"resource", Resources, "internal", "file:///data/reports/q3.csv", false},
		{"guarded resource", Resources, "internal", "file:///data/%2e%2e/etc/passwd", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Allows(c.kind, c.connector, c.item, c.readOnly)
			}
		})
	}
}

func BenchmarkFor(b *testing.B) {
	p := mustNew(b, benchRules()...)
	b.ReportAllocs()
	for b.Loop() {
		p.For(benchCaller)
	}
}
