// Package textcut shortens text for messages and names without splitting
// a UTF-8 sequence.
//
// It is production code: mcpmux, oauthflow, audit and internal/redact cut
// names and quoted input in errors and logs with it. It sits under
// internal/ only so that no other module builds on it.
package textcut

import "unicode/utf8"

// Prefix returns the longest prefix of s that is at most n bytes and ends
// on a rune boundary.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
