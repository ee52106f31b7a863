// Package redact hides credentials in what an upstream sends back, so that
// a value mcpgate put on an upstream request (an OAuth access token, a
// static bearer token, an API key) never reaches an agent through an echo
// of it: in a tool result, an error message, a notification or the body of
// an API response.
//
// # What counts as an occurrence
//
// A credential can come back as itself or JSON-escaped, the way some
// encoder writes strings: "/" as \/ (PHP), "<", ">" and "&" as \u003c,
// \u003e and \u0026 (Go), "+", "'", "=" or "`" as \u002B, \u0027, \u003d,
// \u0060 (.NET, Gson), a non-ASCII character as \uXXXX (Python), hex
// digits in either case. So an occurrence is any text in which every
// character of the credential appears as itself or as any JSON escape of
// it, except for the characters that no encoder escapes (printable ASCII
// but for " \ / < > & ' = + and `), which must appear as themselves. Those make up most of any real credential, and the longest
// run of them is what the search looks for with one [bytes.Index] scan per
// credential: text without that run is passed on without any other work.
// A credential split across several JSON strings or transformed otherwise
// (base64 of it, "Bearer X" base64-encoded for Basic) is not an occurrence.
//
// # Short credentials
//
// A value shorter than [MinLength] is not searched for. Text cannot tell
// it from an accident: a token "t" would turn every member name with a
// "t" in it into a marker and break the protocol (a server/discover
// result no longer lists its versions), a 4-digit key every number that
// holds its digits. A credential that short is guessable in any case, and
// masking tools draw the same line (GitLab masks CI variables of 8
// characters or more). Configuration should refuse static credentials
// shorter than MinLength rather than rely on this package.
//
// # Replacement
//
// Every occurrence becomes [Marker], which is valid inside a JSON string
// and never part of a credential (RFC 6750 token68 has no brackets).
// Everything else is passed on byte for byte: nothing is decoded and
// re-encoded. [Secrets.JSON] keeps JSON valid (an occurrence outside any
// string, such as a numeric key echoed as a number, turns the scalar that
// holds it into the string "[redacted]"; a value made of nothing but JSON
// punctuation and white space has nothing there to replace); [Secrets.Text]
// and [Writer] replace occurrences in any text.
//
// It is production code: mcpmux and the root package redact every
// upstream answer with it. It sits under internal/ only so that no other
// module builds on it.
package redact

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// Marker replaces every occurrence of a secret.
const Marker = "[redacted]"

// MinLength is the length in bytes of the shortest value searched for.
const MinLength = 8

// quotedMarker replaces a JSON scalar outside any string that holds a
// secret: a string, so that the JSON stays valid.
const quotedMarker = `"` + Marker + `"`

// Secrets is a set of credential values to hide. A nil *Secrets hides
// nothing, and its methods pass their input on as is.
type Secrets struct {
	list []secret
	// longest is the most bytes one occurrence of any secret can take,
	// every character in its longest escape.
	longest int
	// inline holds the first secrets, so that the Secrets of one request
	// (one or two header values) cost the hot path one allocation.
	inline [2]secret
}

// secret is one value with what its search needs.
type secret struct {
	value string
	// anchor is text that every occurrence contains as is: the longest
	// run of plain bytes, or, for a value without any, its first byte
	// (and escapedStart says to look for a backslash too).
	anchor string
	// minPre and maxPre bound how many bytes of an occurrence come before
	// its anchor.
	minPre, maxPre int
	escapedStart   bool
}

// New returns the Secrets that hide each of values, or nil when none is
// MinLength bytes long or longer. Values may repeat.
func New(values ...string) *Secrets {
	var s *Secrets
	for _, v := range values {
		s = s.add(v)
	}
	return s
}

// FromHeader returns the Secrets that hide every value of h, the headers
// that carry a credential to an upstream, or nil when none is long enough
// to search for. The credentials of an Authorization or
// Proxy-Authorization value are what follows its scheme (RFC 9110 section
// 11.4), so that an echo of the token alone is hidden as well as
// "Bearer <token>".
func FromHeader(h http.Header) *Secrets {
	var s *Secrets
	for name, vs := range h {
		for _, v := range vs {
			if name == "Authorization" || name == "Proxy-Authorization" {
				v = credentials(v)
			}
			s = s.add(v)
		}
	}
	return s
}

// add returns s with v in it, made when s is nil, unless v is too short.
func (s *Secrets) add(v string) *Secrets {
	if len(v) < MinLength || (s != nil && s.has(v)) {
		return s
	}
	if s == nil {
		s = &Secrets{}
		s.list = s.inline[:0]
	}
	s.list = append(s.list, newSecret(v))
	s.longest = max(s.longest, maxEncoded(v))
	return s
}

// credentials returns the part of an Authorization value after its scheme,
// or all of it when it has no scheme.
func credentials(v string) string {
	if _, rest, ok := strings.Cut(v, " "); ok && strings.TrimLeft(rest, " ") != "" {
		return strings.TrimLeft(rest, " ")
	}
	return v
}

// has reports whether v is one of s's values already.
func (s *Secrets) has(v string) bool {
	for _, sec := range s.list {
		if sec.value == v {
			return true
		}
	}
	return false
}

// newSecret finds v's anchor and the bounds of what precedes it.
func newSecret(v string) secret {
	start, end := longestPlainRun(v)
	if start == end {
		return secret{value: v, anchor: v[:1], escapedStart: true}
	}
	return secret{value: v, anchor: v[start:end], minPre: start, maxPre: maxEncoded(v[:start])}
}

// longestPlainRun returns the bounds of v's longest run of plain bytes.
func longestPlainRun(v string) (int, int) {
	bestStart, bestEnd, runStart := 0, 0, 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && plain(rune(v[i])) {
			continue
		}
		if i-runStart > bestEnd-bestStart {
			bestStart, bestEnd = runStart, i
		}
		runStart = i + 1
	}
	return bestStart, bestEnd
}

// maxEncoded returns the most bytes v can take in an occurrence.
func maxEncoded(v string) int {
	n := 0
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		n += maxForm(r, size)
		i += size
	}
	return n
}
