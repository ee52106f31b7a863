package oauthflow

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	secret := "SECRET-CANARY-xyz"
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nb\x00c", "abc"},
		{"bad \xff\xfe utf8", "bad  utf8"},
		{"echo " + secret + " done", "echo REDACTED done"},
		{"split SEC\x01RET-CANARY-\r\nxyz", "split REDACTED"},
		{strings.Repeat("\x01", 5000) + secret, "REDACTED"},
		{"  trimmed  ", "trimmed"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in, maxDescription, secret); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := sanitize(strings.Repeat("é", 1000), maxDescription)
	if len(long) > maxDescription || !utf8.ValidString(long) {
		t.Errorf("long: %d bytes, valid %v", len(long), utf8.ValidString(long))
	}
	for _, c := range []string{"", "invalid_grant", "a b", "x\"", strings.Repeat("a", 65), "é"} {
		if got := safeCode(c); (got != "") != (c == "invalid_grant") {
			t.Errorf("safeCode(%q) = %q", c, got)
		}
	}
}
