package redact

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// plain reports whether r is a character that JSON encoders write as
// itself: printable ASCII but for the quote and backslash, which must be
// escaped, and the characters that some encoders escape all the same:
// "/" (PHP, Ruby's script_safe), "<", ">", "&" (Go, Gson, .NET), "'"
// and "=" (Gson), "+" and "`" (.NET).
func plain(r rune) bool {
	return r >= 0 && r < 0x80 && plainASCII[r]
}

// escapable are the printable ASCII characters that some encoder escapes.
const escapable = `"\/<>&'=+` + "`"

// plainASCII tells plain characters by table: building the Secrets of a
// request looks at each byte of its credential.
var plainASCII = func() (t [0x80]bool) {
	for c := ' '; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(escapable, c)
	}
	return t
}()

// shortEscape returns the letter of r's two-byte JSON escape, or 0.
func shortEscape(r rune) byte {
	switch r {
	case '"', '\\', '/':
		return byte(r)
	case '\b':
		return 'b'
	case '\f':
		return 'f'
	case '\n':
		return 'n'
	case '\r':
		return 'r'
	case '\t':
		return 't'
	}
	return 0
}

// maxForm returns the most bytes one character, of size bytes as itself,
// can take in an occurrence: \uXXXX, or a surrogate pair beyond the BMP.
func maxForm(r rune, size int) int {
	switch {
	case plain(r) || (r == utf8.RuneError && size == 1):
		return size
	case r > 0xFFFF:
		return 12
	}
	return 6
}

// span is an occurrence: text[start:end].
type span struct{ start, end int }

// spans returns every occurrence of every secret in text, in order of
// start. Occurrences may overlap. inJSON leaves out forms that JSON text
// cannot hold: a bare quote, backslash or control character.
func (s *Secrets) spans(text []byte, inJSON bool) []span {
	var out []span
	for i := range s.list {
		sec := &s.list[i]
		out = sec.find(text, bytesOf(sec.anchor), sec.minPre, sec.maxPre, inJSON, out)
		if sec.escapedStart {
			out = sec.find(text, backslash, 0, 0, inJSON, out)
		}
	}
	slices.SortFunc(out, func(a, b span) int { return a.start - b.start })
	return out
}

// backslash begins every escape.
var backslash = []byte{'\\'}

// bytesOf returns s's bytes without a copy, for bytes.Index, which only
// reads them: a copy per search would cost the hot path an allocation.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// find appends the occurrences of sec around each place needle is found:
// those that start between maxPre and minPre bytes before it.
func (sec *secret) find(text, needle []byte, minPre, maxPre int, inJSON bool, out []span) []span {
	for from := 0; from < len(text); {
		i := bytes.Index(text[from:], needle)
		if i < 0 {
			break
		}
		at := from + i
		for start := max(at-maxPre, 0); start <= at-minPre; start++ {
			if end, _ := match(text, start, sec.value, inJSON); end >= 0 {
				out = append(out, span{start, end})
			}
		}
		from = at + 1
	}
	return out
}

// match returns the end of the longest occurrence of value that starts at
// start in text, or -1. more reports that text ends where a longer text
// could still hold an occurrence from start, which a Writer must wait for.
//
// A character can match in more than one way (outside JSON, a backslash
// may be itself or begin an escape), so match follows every way at once:
// the set of positions reached so far, which stays tiny.
func match(text []byte, start int, value string, inJSON bool) (end int, more bool) {
	var bufA, bufB [4]int
	cur, next := append(bufA[:0], start), bufB[:0]
	for i := 0; i < len(value) && len(cur) > 0; {
		r, size := utf8.DecodeRuneInString(value[i:])
		next = next[:0]
		for _, p := range cur {
			next, more = step(text, p, value[i:i+size], r, inJSON, next, more)
		}
		cur, next = next, cur
		i += size
	}
	if len(cur) == 0 {
		return -1, more
	}
	return slices.Max(cur), more
}

// step appends to next every position after a form of the character raw
// (r decoded) that begins at p, and sets more when text ends inside one.
func step(text []byte, p int, raw string, r rune, inJSON bool, next []int, more bool) ([]int, bool) {
	rest := text[p:]
	if !inJSON || (r >= ' ' && r != '"' && r != '\\') {
		next, more = prefixed(rest, raw, p, next, more)
	}
	if plain(r) || (r == utf8.RuneError && len(raw) == 1) {
		return next, more
	}
	if c := shortEscape(r); c != 0 {
		next, more = prefixed(rest, string([]byte{'\\', c}), p, next, more)
	}
	n, partial := uEscape(rest, r)
	if n > 0 && !slices.Contains(next, p+n) {
		next = append(next, p+n)
	}
	return next, more || partial
}

// prefixed appends p+len(form) when rest begins with form, and reports
// more when rest is a proper prefix of form.
func prefixed(rest []byte, form string, p int, next []int, more bool) ([]int, bool) {
	switch {
	case len(rest) >= len(form):
		if string(rest[:len(form)]) == form && !slices.Contains(next, p+len(form)) {
			next = append(next, p+len(form))
		}
	case string(rest) == form[:len(rest)]:
		more = true
	}
	return next, more
}

// uEscape returns the length of the \uXXXX escape of r (a surrogate pair
// beyond the BMP) that rest begins with, hex digits in either case, or 0;
// partial reports that rest ends inside what could still be one.
func uEscape(rest []byte, r rune) (int, bool) {
	units, n := [2]rune{r}, 1
	if r > 0xFFFF {
		units[0], units[1] = utf16.EncodeRune(r)
		n = 2
	}
	for i, u := range units[:n] {
		part := rest[min(6*i, len(rest)):]
		if m := matchUnit(part, u); m < 6 {
			return 0, m == len(part)
		}
	}
	return 6 * n, false
}

// matchUnit returns how many bytes of \uXXXX for unit u rest matches from
// its start, up to 6.
func matchUnit(rest []byte, u rune) int {
	const hex = "0123456789abcdef"
	want := [6]byte{'\\', 'u', hex[u>>12&0xF], hex[u>>8&0xF], hex[u>>4&0xF], hex[u&0xF]}
	n := 0
	for n < 6 && n < len(rest) && (rest[n] == want[n] || (n >= 2 && rest[n]|0x20 == want[n] && want[n] >= 'a')) {
		n++
	}
	return n
}
