package connectors

import (
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"notion", true}, {"a", true}, {"0day", true}, {"my-tools-2", true},
		{strings.Repeat("a", 32), true}, {strings.Repeat("a", 33), false},
		{"", false}, {"-a", false}, {"Notion", false}, {"my_tools", false},
		{"a.b", false}, {"a/b", false}, {"mcpgate", false}, {"é", false},
	}
	for _, tt := range tests {
		if err := ValidateID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"https://mcp.example.com/mcp", ""},
		{"http://127.0.0.1:9000/mcp?x=1", ""},
		{"", "required"},
		{"ftp://x/mcp", "scheme"},
		{"/mcp", "scheme"},
		{"https:///mcp", "no host"},
		{"https://user:pw@x/mcp", "credentials"},
		{"https://x/mcp#frag", "fragment"},
		{"https://x/%zz", "invalid"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.raw)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("ParseURL(%q) = %v, want %q", tt.raw, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("ParseURL(%q) echoes the password: %v", tt.raw, err)
		}
	}
}

func TestAuth(t *testing.T) {
	const canary = "s3cret-canary"
	tests := []struct {
		name string
		auth Auth
		ok   bool
	}{
		{"none", Auth{}, true},
		{"bearer", Auth{Type: AuthBearer, Token: canary}, true},
		{"header", Auth{Type: AuthHeader, Name: "X-Api-Key", Value: canary}, true},
		{"empty bearer", Auth{Type: AuthBearer}, false},
		{"bearer with space", Auth{Type: AuthBearer, Token: canary + " x"}, false},
		{"bearer with newline", Auth{Type: AuthBearer, Token: canary + "\r\nX: y"}, false},
		{"bad header name", Auth{Type: AuthHeader, Name: "X Api", Value: canary}, false},
		{"forbidden header", Auth{Type: AuthHeader, Name: "mcp-session-id", Value: canary}, false},
		{"cookie header", Auth{Type: AuthHeader, Name: "Cookie", Value: canary}, false},
		{"empty value", Auth{Type: AuthHeader, Name: "X-Key"}, false},
		{"value with newline", Auth{Type: AuthHeader, Name: "X-Key", Value: canary + "\n"}, false},
		{"unknown type", Auth{Type: "basic", Token: canary}, false},
		{"values without type", Auth{Token: canary}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.auth.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("the error echoes the secret: %v", err)
			}
		})
	}
	if h := (Auth{Type: AuthBearer, Token: "t"}).Header(); h.Get("Authorization") != "Bearer t" {
		t.Errorf("bearer header = %v", h)
	}
	if h := (Auth{Type: AuthHeader, Name: "x-api-key", Value: "v"}).Header(); h.Get("X-Api-Key") != "v" {
		t.Errorf("custom header = %v", h)
	}
}

func TestToolPolicy(t *testing.T) {
	p := ToolPolicy{Allow: []string{"a", "b"}, Operations: map[string]Operation{"a": Write, "c": Read}}
	if !p.Allows("a") || p.Allows("c") || !(ToolPolicy{}).Allows("anything") {
		t.Error("Allows is wrong")
	}
	tests := []struct {
		name string
		hint bool
		want Operation
	}{{"a", true, Write}, {"c", false, Read}, {"b", true, Read}, {"b", false, Write}}
	for _, tt := range tests {
		if got := p.Operation(tt.name, tt.hint); got != tt.want {
			t.Errorf("Operation(%q, %v) = %s, want %s", tt.name, tt.hint, got, tt.want)
		}
	}
}
