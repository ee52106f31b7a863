package grants

import "testing"

func TestTraversal(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"file:///data/x", false},
		{"file:///data//x", false},
		{"file:///data/x.txt", false},
		{"file:///data/...", false},
		{"file:///data/.x", false},
		{"file:///data/a%20b", false},
		{"file:///data/100%", false},
		{"file:///data/%zz", false},
		{"", false},
		{".", true},
		{"..", true},
		{"file:///data/../etc/passwd", true},
		{"file:///data/./x", true},
		{"file:///data/x/..", true},
		{"file:///data/%2e%2e/etc/passwd", true},
		{"file:///data/%2E%2E/etc/passwd", true},
		{"file:///data/%2E./etc/passwd", true},
		{"file:///data/.%2e/etc/passwd", true},
		{"file:///data/%2e/x", true},
		{"file:///data/..%2fetc/passwd", true},
		{"file:///data/..%2Fetc/passwd", true},
		{"file:///data/x%2fy", true},
		{"file:///data/x%5cy", true},
		{"file:///data/x%5Cy", true},
		{`file:///data/..\etc\passwd`, true},
		{`file:///data/x\y`, true},
		{"file:///data/%252e%252e/etc", true},
		{"file:///data/%25252f", true},
		{"file:///data/%2525252525252e", true},
		// Path parameters (Tomcat, Jetty) and the start of a query or
		// fragment end a segment's path: "..;x" is "..".
		{"file:///data/..;", true},
		{"file:///data/..;/secret", true},
		{"file:///data/..;jsessionid=1/secret", true},
		{"file:///data/.;x", true},
		{"file:///data/.;", true},
		{"file:///data/..?x", true},
		{"file:///data/..#x", true},
		{"file:///data/%2e%2e;", true},
		{"file:///data/%2E%2e;x/secret", true},
		{"file:///data/..%3b", true},
		{"file:///data/..%3B/secret", true},
		{"file:///data/%2e%2e%3bx", true},
		{"file:///data/%252e%252e%253b", true},
		{"file:///data/.%2e;", true},
		{"file:///data/x;y", false},
		{"file:///data/...;", false},
		{"file:///data/;", false},
		{"file:///data/;..", false},
		{"file:///data/x?a=..", false},
		{"file:///data/x#..", false},
	}
	for _, tt := range tests {
		if got := traversal(tt.name); got != tt.want {
			t.Errorf("traversal(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTraversalGuard checks that a wildcard grant over resources or
// templates never admits a name that could step out of it (dot segments,
// encoded or not, and backslashes), whatever the upstream would normalize.
func TestTraversalGuard(t *testing.T) {
	p := mustNew(t,
		Rule{Sources: []string{"user:alice"}, Resources: []string{"internal/file:///data/**"}, Templates: []string{"internal/file:///data/*"}},
		Rule{Sources: []string{"user:alice"}, Resources: []string{"internal/file:///data/../public"}},
		Rule{Sources: []string{"user:alice"}, Tools: []string{"internal/**"}},
		Rule{Sources: []string{"user:bob"}, Connectors: []string{"internal"}},
	)
	tests := []struct {
		caller Caller
		kind   Kind
		name   string
		want   Decision
	}{
		{alice, Resources, "file:///data/x", allowed1},
		{alice, Resources, "file:///data/x/y", allowed1},
		{alice, Resources, "file:///data//x", allowed1},
		{alice, Resources, "file:///data/../etc/passwd", Decision{}},
		{alice, Resources, "file:///data/%2e%2e/etc/passwd", Decision{}},
		{alice, Resources, "file:///data/..%2fetc/passwd", Decision{}},
		{alice, Resources, "file:///data/%2E./etc/passwd", Decision{}},
		{alice, Resources, `file:///data/..\etc\passwd`, Decision{}},
		{alice, Resources, "FILE:///data/x", Decision{}},
		{alice, Resources, "file:///DATA/x", Decision{}},
		{alice, Templates, "file:///data/{name}", allowed1},
		{alice, Templates, "file:///data/..", Decision{}},
		{alice, Templates, "file:///data/%2e%2E", Decision{}},
		// A literal pattern still matches its own bytes.
		{alice, Resources, "file:///data/../public", allowed2},
		// Tool names are not paths that an upstream resolves.
		{alice, Tools, "a/../b", allowed3},
		// A connector-wide grant has no narrower scope to escape.
		{Caller{ID: "bob"}, Resources, "file:///data/../etc/passwd", allowed4},
	}
	for _, tt := range tests {
		got := p.For(tt.caller).Decide(tt.kind, "internal", tt.name, false)
		if got != tt.want {
			t.Errorf("%s Decide(%s, internal, %q) = %+v, want %+v", tt.caller.ID, tt.kind, tt.name, got, tt.want)
		}
	}
}

var allowed4 = Decision{Allowed: true, Rule: 4}

// TestAllowsExpansion checks reads through a URI template: the URI read
// passes the traversal guard whatever template pattern admits the
// template, literal ones included; only a rule granting every template of
// the connector lets a traversing URI through, as it does for resources.
func TestAllowsExpansion(t *testing.T) {
	p := mustNew(t,
		Rule{Sources: []string{"user:alice"}, Templates: []string{"internal/file:///data/*"}},
		Rule{Sources: []string{"user:carol"}, Templates: []string{"internal/file:///data/{name}"}},
		Rule{Sources: []string{"user:bob"}, Connectors: []string{"internal"}},
		Rule{Sources: []string{"user:dave"}, Resources: []string{"internal/**"}},
	)
	const tmpl = "file:///data/{name}"
	tests := []struct {
		caller, tmpl, uri string
		want              bool
	}{
		{"alice", tmpl, "file:///data/ok", true},
		{"alice", tmpl, "file:///data/..", false},
		{"alice", tmpl, "file:///data/..%2f..%2fsecret", false},
		{"alice", tmpl, "file:///data/..;", false},
		{"alice", tmpl, "file:///data/%2e%2e;", false},
		{"alice", tmpl, "file:///data/.;x", false},
		{"alice", "file:///data/{+path}/..", "file:///data/x/..", false},
		{"carol", tmpl, "file:///data/ok", true},
		{"carol", tmpl, "file:///data/..", false},
		{"carol", tmpl, "file:///data/..;", false},
		{"carol", "file:///data/{id}", "file:///data/ok", false},
		{"bob", tmpl, "file:///data/ok", true},
		{"bob", tmpl, "file:///data/..;", true},
		{"dave", tmpl, "file:///data/ok", false},
		{"", tmpl, "file:///data/ok", false},
	}
	for _, tt := range tests {
		v := p.For(Caller{ID: tt.caller})
		if got := v.AllowsExpansion("internal", tt.tmpl, tt.uri); got != tt.want {
			t.Errorf("%s AllowsExpansion(internal, %q, %q) = %v, want %v", tt.caller, tt.tmpl, tt.uri, got, tt.want)
		}
		// A URI that passes the guard changes nothing: the template
		// decides, as Allows has it.
		if !traversal(tt.uri) && v.AllowsExpansion("internal", tt.tmpl, tt.uri) != v.Allows(Templates, "internal", tt.tmpl, false) {
			t.Errorf("%s AllowsExpansion(internal, %q, %q) differs from Allows of the template", tt.caller, tt.tmpl, tt.uri)
		}
	}
	if (*View)(nil).AllowsExpansion("internal", tmpl, "file:///data/ok") {
		t.Error("a nil view allowed an expansion")
	}
}
