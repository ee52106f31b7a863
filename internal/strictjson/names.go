package strictjson

import (
	"bytes"
	"hash/maphash"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// linearLimit is how many names an object may have before Check switches
// from comparing each new name with every earlier one to a map keyed by a
// hash of the folded name; below it the scan is faster and allocates nothing.
const linearLimit = 16

// foldSeed keys the folded-name hashes; being random per process, it
// keeps a client from choosing names that collide.
var foldSeed = maphash.MakeSeed()

// quoteLimit is how many bytes of a name an error message shows, so that a
// hostile 10 MB name does not become a 10 MB log line.
const quoteLimit = 64

// name is one unescaped member name, stored as a span of the text or, when
// it contained escapes, of the scanner's arena.
type name struct {
	off, n  int
	inArena bool
}

// nameBytes returns the unescaped bytes of n.
func (s *scanner) nameBytes(n name) []byte {
	if n.inArena {
		return s.arena[n.off : n.off+n.n]
	}
	return s.data[n.off : n.off+n.n]
}

// addName records the member name whose string ended just before s.i and
// started at start, refusing it if the innermost object already has a name
// equal to it under simple case folding.
func (s *scanner) addName(start int, escaped bool) error {
	n := name{off: start + 1, n: s.i - start - 2}
	if escaped {
		n = s.unescape(s.data[start+1 : s.i-1])
	}
	f := &s.frames[len(s.frames)-1]
	if prev, ok := s.find(f, n); ok {
		return s.clash(start, prev, n)
	}
	s.names = append(s.names, n)
	return nil
}

// find returns the earlier name of the object in f that folds to the same
// name as n, and indexes n under its folded form once the object is large.
func (s *scanner) find(f *frame, n name) (name, bool) {
	b := s.nameBytes(n)
	if f.set == nil && len(s.names)-f.base < linearLimit {
		return s.scan(f, b)
	}
	if f.set == nil {
		s.index(f)
	}
	h := s.foldHash(b)
	j, ok := f.set[h]
	if !ok {
		f.set[h] = len(s.names)
		return name{}, false
	}
	if p := s.names[j]; bytes.EqualFold(s.nameBytes(p), b) {
		return p, true
	}
	// Two different names with one 64-bit hash: a random seed makes this
	// too rare to aim for, and the scan keeps the answer right anyway.
	return s.scan(f, b)
}

// scan compares b with every name of the object in f.
func (s *scanner) scan(f *frame, b []byte) (name, bool) {
	for _, p := range s.names[f.base:] {
		if bytes.EqualFold(s.nameBytes(p), b) {
			return p, true
		}
	}
	return name{}, false
}

// index builds the folded-name map of the object in f from its names so
// far, which the linear scans have shown to be distinct.
func (s *scanner) index(f *frame) {
	f.set = make(map[uint64]int, 2*linearLimit)
	for j := f.base; j < len(s.names); j++ {
		f.set[s.foldHash(s.nameBytes(s.names[j]))] = j
	}
}

// foldHash hashes the folded form of a name. Keys are hashes rather than
// strings so that a large object costs no allocation per member.
func (s *scanner) foldHash(b []byte) uint64 {
	s.fold = appendFolded(s.fold[:0], b)
	return maphash.Bytes(foldSeed, s.fold)
}

// clash is the error for the name n, starting at offset, that matches the
// earlier name prev.
func (s *scanner) clash(offset int, prev, n name) error {
	a, b := s.nameBytes(prev), s.nameBytes(n)
	if bytes.Equal(a, b) {
		return ambiguityError(offset, "duplicate member name "+quoteName(b))
	}
	return ambiguityError(offset, "member names "+quoteName(a)+" and "+quoteName(b)+" differ only in case")
}

// quoteName quotes a name for an error message in ASCII, so that look-alike
// runes such as the Kelvin sign stay visible, and shortens a long one.
func quoteName(b []byte) string {
	if len(b) <= quoteLimit {
		return strconv.QuoteToASCII(string(b))
	}
	return strconv.QuoteToASCII(textcut.Prefix(string(b), quoteLimit)) + "..."
}

// unescape copies the unescaped form of raw, a validated string body, to
// the arena and returns where it is.
func (s *scanner) unescape(raw []byte) name {
	off := len(s.arena)
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			s.arena = append(s.arena, raw[i])
			i++
			continue
		}
		r, n := unescapeRune(raw[i:])
		s.arena = utf8.AppendRune(s.arena, r)
		i += n
	}
	return name{off: off, n: len(s.arena) - off, inArena: true}
}

// unescapeRune decodes the escape sequence at the start of esc, which the
// scanner has already validated, and returns the rune and its length.
//
// It decodes surrogates exactly as encoding/json does: a high surrogate
// escape followed by a low one is one rune, and any other surrogate is
// U+FFFD. Comparing names as encoding/json will see them is what matters.
func unescapeRune(esc []byte) (rune, int) {
	switch esc[1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		return unescapeU(esc)
	}
	return rune(esc[1]), 2 // '"', '\\' and '/' stand for themselves
}

// unescapeU decodes a \u escape, or a surrogate pair of them, at esc.
func unescapeU(esc []byte) (rune, int) {
	r := hexRune(esc[2:6])
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(esc) >= 12 && esc[6] == '\\' && esc[7] == 'u' {
		if pair := utf16.DecodeRune(r, hexRune(esc[8:12])); pair != unicode.ReplacementChar {
			return pair, 12
		}
	}
	return unicode.ReplacementChar, 6
}

// hexRune returns the value of four hexadecimal digits; a bad digit, which
// the scanner never lets through, yields a value that is not a surrogate.
func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		v, ok := hexValue(c)
		if !ok {
			return -1
		}
		r = r<<4 | v
	}
	return r
}

// appendFolded appends the canonical folded form of name: every rune
// replaced by the smallest rune of its unicode.SimpleFold orbit. Two names
// get the same form exactly when bytes.EqualFold says they are equal, which
// is also how encoding/json matches member names to struct fields.
func appendFolded(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// foldRune returns the smallest rune in the simple case folding orbit of r.
func foldRune(r rune) rune {
	for {
		next := unicode.SimpleFold(r)
		if next <= r {
			return next
		}
		r = next
	}
}
