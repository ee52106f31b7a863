package toolsearch

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTokenLen bounds one token, in bytes: a longer run of letters is cut
// there, on both the index's side and the query's, so that a token of a
// megabyte costs no more than one of 64 bytes and still matches itself.
const maxTokenLen = 64

// tokens appends the terms of s to out: s split at every character that is
// not a letter or a digit (snake_case, kebab-case, dots, slashes, spaces)
// and at camelCase boundaries, lowercased and stemmed. Invalid UTF-8 is a
// separator, as any other non-letter.
func tokens(out []string, s string) []string {
	start := -1
	var prev rune
	for i, r := range s {
		word := r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if start >= 0 && (!word || camelBreak(prev, r, s[i+utf8.RuneLen(r):])) {
			out = appendTerm(out, s[start:i])
			start = -1
		}
		if word && start < 0 {
			start = i
		}
		prev = r
	}
	if start >= 0 {
		out = appendTerm(out, s[start:])
	}
	return out
}

// camelBreak reports whether a word breaks between prev and r: a lower
// case letter or digit followed by an upper case one ("listIssues"), or
// the last capital of an acronym that starts a word ("HTTPServer" breaks
// before the S, as the next rune is lower case).
func camelBreak(prev, r rune, rest string) bool {
	if !unicode.IsUpper(r) {
		return false
	}
	if unicode.IsLower(prev) || unicode.IsDigit(prev) {
		return true
	}
	if !unicode.IsUpper(prev) {
		return false
	}
	next, _ := utf8.DecodeRuneInString(rest)
	return unicode.IsLower(next)
}

// appendTerm appends word, lowercased, cut and stemmed.
func appendTerm(out []string, word string) []string {
	return append(out, stem(cut(strings.ToLower(word), maxTokenLen)))
}

// cut returns the longest prefix of s of at most n bytes that ends on a
// rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// stem strips the common English inflections, so that "issues",
// "listing" and "created" meet "issue", "list" and "create". It is light
// on purpose (an s-stemmer with -ing, -ed and a final -e): the same rules
// run on the query and the index, so a stem need only be consistent, not
// a word, and a light one rarely joins words that differ in meaning.
func stem(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		w = w[:len(w)-3] + "y"
	case len(w) > 4 && (strings.HasSuffix(w, "sses") || strings.HasSuffix(w, "ches") ||
		strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "xes")):
		w = w[:len(w)-2]
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	switch {
	case len(w) > 5 && strings.HasSuffix(w, "ing"):
		w = w[:len(w)-3]
	case len(w) > 4 && strings.HasSuffix(w, "ed"):
		w = w[:len(w)-2]
	}
	if len(w) > 4 && strings.HasSuffix(w, "e") {
		w = w[:len(w)-1]
	}
	return w
}
