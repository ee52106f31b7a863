package grants

import (
	"strings"
	"testing"
)

// checkErr fails unless err is nil when want is "", or contains want.
func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error: %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want one containing %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not contain %q", what, err, want)
	}
}

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		pattern string
		wantErr string
	}{
		{"notion/*", ""},
		{"notion/**", ""},
		{"internal/**", ""},
		{"**", ""},
		{"**/search", ""},
		{"*/search", ""},
		{"notion-*/x", ""},
		{"notion/", ""},
		{"a//b", ""},
		{"notion/search*", ""},
		{"notion/*-read", ""},
		{"notion/[a]?\\", ""},
		{"internal/file:///data/**", ""},
		{"notion/caf\u00e9 au lait", ""},
		{"", "empty pattern"},
		{"notion", `pattern "notion" names no item; use "notion/**" for all of its items`},
		{"*", `pattern "*" names no item`},
		{"/x", `pattern "/x": connector part "" is empty`},
		{"Notion/x", `pattern "Notion/x": connector part "Notion" may hold only lowercase letters`},
		{"my_conn/x", `connector part "my_conn" may hold only`},
		{"no**/x", `connector part "no**" may not contain **`},
		{"notion/a**", `pattern "notion/a**": ** must be a whole segment`},
		{"notion/**b", `** must be a whole segment`},
		{"notion/***", `** must be a whole segment`},
		{"notion/x\n", `pattern "notion/x\n": contains control character U+000A`},
		{"notion/\x00", "control character U+0000"},
		{"notion/\u0085", "control character U+0085"},
		{"notion/\xff", "not valid UTF-8"},
		{strings.Repeat("a", 65) + "/x", "longer than 64"},
	}
	for _, tt := range tests {
		checkErr(t, "ValidatePattern("+tt.pattern+")", ValidatePattern(tt.pattern), tt.wantErr)
	}
}

func TestValidateConnectorPattern(t *testing.T) {
	tests := []struct {
		pattern string
		wantErr string
	}{
		{"*", ""},
		{"notion", ""},
		{"notion-*", ""},
		{"*-internal", ""},
		{"a1-b2", ""},
		{strings.Repeat("a", 64), ""},
		{"", `connector pattern "" is empty`},
		{"**", `connector pattern "**" may not contain **`},
		{"Notion", `connector pattern "Notion" may hold only lowercase letters`},
		{"my_conn", "may hold only"},
		{"notion/x", "may hold only"},
		{"notion ", "may hold only"},
		{"n?tion", "may hold only"},
		{"nоtion", "may hold only"}, // Cyrillic о
		{strings.Repeat("a", 65), "longer than 64"},
	}
	for _, tt := range tests {
		checkErr(t, "ValidateConnectorPattern("+tt.pattern+")", ValidateConnectorPattern(tt.pattern), tt.wantErr)
	}
}

func TestValidateSource(t *testing.T) {
	tests := []struct {
		source  string
		wantErr string
	}{
		{"*", ""},
		{"user:alice", ""},
		{"user:alice@example.com", ""},
		{"group:ai-users", ""},
		{"user:a:b", ""},
		{"user:Алиса", ""},
		{"", `source "": want *, user:<id> or group:<name>`},
		{"alice", `source "alice": want *`},
		{"**", "want *"},
		{"User:alice", `source "User:alice": want *`},
		{"role:admin", "want *"},
		{"user:", `source "user:": empty user`},
		{"group:", `source "group:": empty group`},
		{"user:alice bob", `source "user:alice bob": user contains white space`},
		{"group:ai users", "group contains white space"},
		{"user:\u00a0x", "white space"},
		{"user:alice\t", "control character U+0009"},
		{"group:a\x00", "control character U+0000"},
		{"user:\xff", "not valid UTF-8"},
	}
	for _, tt := range tests {
		checkErr(t, "ValidateSource("+tt.source+")", ValidateSource(tt.source), tt.wantErr)
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr string
	}{
		{"", RoleUser, ""},
		{"user", RoleUser, ""},
		{"admin", RoleAdmin, ""},
		{"Admin", "", `role "Admin": want user or admin`},
		{"root", "", `role "root"`},
		{" admin", "", "want user or admin"},
	}
	for _, tt := range tests {
		got, err := ParseRole(tt.in)
		checkErr(t, "ParseRole("+tt.in+")", err, tt.wantErr)
		if got != tt.want {
			t.Errorf("ParseRole(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	ok := Rule{Sources: []string{"*"}, Connectors: []string{"notion"}}
	tests := []struct {
		name    string
		rules   []Rule
		wantErr string
	}{
		{"none", nil, ""},
		{"valid", []Rule{ok, {Sources: []string{"group:g"}, Role: RoleAdmin, Tools: []string{"**"}}}, ""},
		{"no sources", []Rule{ok, {Connectors: []string{"notion"}}}, "grant 2 names no sources"},
		{"bad source", []Rule{ok, ok, {Sources: []string{"usr:bob"}, Connectors: []string{"x"}}}, `grant 3: source "usr:bob"`},
		{"bad role", []Rule{{Sources: []string{"*"}, Role: "root", Connectors: []string{"x"}}}, `grant 1: role "root"`},
		{"bad connector", []Rule{{Sources: []string{"*"}, Connectors: []string{"Notion"}}}, `grant 1: connector pattern "Notion"`},
		{"bad tool", []Rule{ok, {Sources: []string{"*"}, Tools: []string{"notion"}}}, `grant 2: tools: pattern "notion" names no item`},
		{"bad resource", []Rule{{Sources: []string{"*"}, Resources: []string{"x/a**"}}}, `grant 1: resources: pattern "x/a**"`},
		{"bad template", []Rule{{Sources: []string{"*"}, Templates: []string{""}}}, "grant 1: templates: empty pattern"},
		{"bad prompt", []Rule{{Sources: []string{"*"}, Prompts: []string{"X/y"}}}, `grant 1: prompts: pattern "X/y"`},
		{"no scope", []Rule{ok, ok, ok, {Sources: []string{"*"}}}, "grant 4 names no connectors and no items"},
		{"read-only no scope", []Rule{{Sources: []string{"*"}, Operations: ReadOnly}}, "grant 1 names no connectors and no items"},
	}
	for _, tt := range tests {
		p, err := New(tt.rules)
		checkErr(t, tt.name, err, tt.wantErr)
		if (err == nil) != (p != nil) {
			t.Errorf("%s: New returned policy %v with error %v", tt.name, p, err)
		}
	}
}

// TestRuleValidate checks that a rule standing alone is checked as New
// checks each rule of a list, its errors naming no index.
func TestRuleValidate(t *testing.T) {
	tests := []struct {
		name    string
		rule    Rule
		wantErr string
	}{
		{"valid", Rule{Sources: []string{"user:bob"}, Tools: []string{"notion/*"}, Operations: ReadOnly}, ""},
		{"no sources", Rule{Connectors: []string{"notion"}}, "grant names no sources"},
		{"bad source", Rule{Sources: []string{"usr:bob"}, Connectors: []string{"x"}}, `grant: source "usr:bob"`},
		{"bad glob", Rule{Sources: []string{"*"}, Tools: []string{"notion/a**"}}, `grant: tools: pattern "notion/a**": ** must be a whole segment`},
		{"bad operations", Rule{Sources: []string{"*"}, Connectors: []string{"x"}, Operations: "write"}, `grant: operations "write"`},
		{"no scope", Rule{Sources: []string{"*"}}, "grant names no connectors and no items"},
	}
	for _, tt := range tests {
		checkErr(t, tt.name, tt.rule.Validate(), tt.wantErr)
	}
}
