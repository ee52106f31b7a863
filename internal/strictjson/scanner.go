package strictjson

import (
	"strconv"
	"sync"
	"unicode/utf8"
)

// scanners recycles scanners and their stacks: Check is on the gateway's
// hot path, and a scanner cannot live on the goroutine stack because its
// slices grow through a pointer.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// keepLimit is the largest stack, in elements or bytes, that a scanner
// keeps for reuse; one huge body should not pin its memory for good.
const keepLimit = 1024

// scanner walks one JSON text in a single pass with an explicit index and
// an explicit stack, so that hostile nesting cannot exhaust the goroutine
// stack and every byte is looked at a bounded number of times.
type scanner struct {
	data     []byte
	i        int
	maxDepth int
	frames   []frame // open arrays and objects, innermost last
	names    []name  // member names of every open object, innermost last
	arena    []byte  // unescaped copies of names that contained escapes
	fold     []byte  // scratch space for folded names
}

// frame is one open array or object.
type frame struct {
	object bool
	base   int            // index in names of this object's first member name
	arena  int            // length of arena when the object opened
	set    map[uint64]int // folded-name hash to index in names, for large objects
}

// release forgets the text and returns s to the pool, unless one of its
// stacks grew too large to be worth keeping.
func (s *scanner) release() {
	clear(s.frames) // drop the maps of objects left open by an error
	s.data, s.i = nil, 0
	s.frames, s.names, s.arena = s.frames[:0], s.names[:0], s.arena[:0]
	if max(cap(s.frames), cap(s.names), cap(s.arena), cap(s.fold)) > keepLimit {
		return
	}
	scanners.Put(s)
}

// plain marks the bytes that may appear in a string without further
// checks: printable ASCII other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// run scans the text: one value, then only white space.
func (s *scanner) run() error {
	for {
		opened, err := s.value()
		if err != nil {
			return err
		}
		if opened {
			continue
		}
		done, err := s.afterValue()
		if err != nil || done {
			return err
		}
	}
}

// value scans a scalar or opens a container. It reports opened when it left
// a container open with its first element, or first key and colon, to come.
func (s *scanner) value() (opened bool, err error) {
	s.skipSpace()
	if s.i >= len(s.data) {
		return false, s.eof()
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.open(true, '}')
	case c == '[':
		return s.open(false, ']')
	case c == '"':
		_, err = s.str()
	case c == '-' || isDigit(c):
		err = s.number()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	default:
		err = s.badChar("looking for beginning of value")
	}
	return false, err
}

// open pushes an array or object at s.i; an empty one is closed at once.
func (s *scanner) open(object bool, closer byte) (opened bool, err error) {
	if err := s.push(object); err != nil {
		return false, err
	}
	s.i++
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == closer {
		s.i++
		s.pop()
		return false, nil
	}
	if object {
		return true, s.member()
	}
	return true, nil
}

// afterValue consumes what follows a complete value: closing brackets, then
// a comma (and, in an object, the next key), or the end of the text.
func (s *scanner) afterValue() (done bool, err error) {
	for {
		s.skipSpace()
		if len(s.frames) == 0 {
			return true, s.end()
		}
		if s.i >= len(s.data) {
			return false, s.eof()
		}
		object := s.frames[len(s.frames)-1].object
		switch c := s.data[s.i]; {
		case c == ',':
			s.i++
			if object {
				s.skipSpace()
				return false, s.member()
			}
			return false, nil
		case c == '}' && object, c == ']' && !object:
			s.i++
			s.pop()
		case object:
			return false, s.badChar("after object key:value pair")
		default:
			return false, s.badChar("after array element")
		}
	}
}

// member scans an object key, records it, and consumes the colon after it.
func (s *scanner) member() error {
	if s.i >= len(s.data) {
		return s.eof()
	}
	if s.data[s.i] != '"' {
		return s.badChar("looking for beginning of object key string")
	}
	start := s.i
	escaped, err := s.str()
	if err != nil {
		return err
	}
	if err := s.addName(start, escaped); err != nil {
		return err
	}
	s.skipSpace()
	if s.i >= len(s.data) {
		return s.eof()
	}
	if s.data[s.i] != ':' {
		return s.badChar("after object key")
	}
	s.i++
	return nil
}

// end checks that nothing but white space follows the top-level value.
func (s *scanner) end() error {
	if s.i < len(s.data) {
		return s.badChar("after top-level value")
	}
	return nil
}

// push opens a container, refusing to go deeper than maxDepth.
func (s *scanner) push(object bool) error {
	if len(s.frames) >= s.maxDepth {
		return ambiguityError(s.i, "nesting deeper than "+strconv.Itoa(s.maxDepth))
	}
	s.frames = append(s.frames, frame{object: object, base: len(s.names), arena: len(s.arena)})
	return nil
}

// pop closes the innermost container and forgets its member names.
func (s *scanner) pop() {
	top := len(s.frames) - 1
	f := s.frames[top]
	s.frames[top] = frame{} // let the pool not pin the member-name map
	s.names = s.names[:f.base]
	s.arena = s.arena[:f.arena]
	s.frames = s.frames[:top]
}

// skipSpace skips the four white space bytes of RFC 8259 §2.
func (s *scanner) skipSpace() {
	data, i := s.data, s.i
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	s.i = i
}

// str scans a string starting at its opening quote and reports whether it
// contains escapes, so that member names without any need no copy.
func (s *scanner) str() (escaped bool, err error) {
	s.i++
	for {
		s.skipPlain()
		if s.i >= len(s.data) {
			return false, s.eof()
		}
		switch c := s.data[s.i]; {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			err = s.escape()
		case c < 0x20:
			err = s.badChar("in string literal")
		default:
			err = s.utf8()
		}
		if err != nil {
			return false, err
		}
	}
}

// skipPlain skips bytes that need no checks inside a string. It works on
// locals because this loop is where most of Check's time goes.
func (s *scanner) skipPlain() {
	data, i := s.data, s.i
	for i < len(data) && plain[data[i]] {
		i++
	}
	s.i = i
}

// utf8 consumes one multi-byte UTF-8 sequence inside a string. Invalid
// bytes are refused rather than replaced, because a parser that replaces
// them and one that keeps them read different strings.
func (s *scanner) utf8() error {
	r, n := utf8.DecodeRune(s.data[s.i:])
	if r == utf8.RuneError && n == 1 {
		return syntaxError(s.i, "invalid UTF-8 in string")
	}
	s.i += n
	return nil
}

// escape consumes one escape sequence starting at its backslash.
func (s *scanner) escape() error {
	s.i++
	if s.i >= len(s.data) {
		return s.eof()
	}
	switch s.data[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return nil
	case 'u':
		s.i++
		return s.hex4()
	}
	return s.badChar("in string escape code")
}

// hex4 consumes the four hexadecimal digits of a \u escape.
func (s *scanner) hex4() error {
	for range 4 {
		if s.i >= len(s.data) {
			return s.eof()
		}
		if _, ok := hexValue(s.data[s.i]); !ok {
			return s.badChar(`in \u hexadecimal character escape`)
		}
		s.i++
	}
	return nil
}

// number consumes a number exactly as RFC 8259 §6 spells it: no leading
// zeros, no plus sign, and digits on both sides of a point and after an e.
func (s *scanner) number() error {
	if s.data[s.i] == '-' {
		s.i++
	}
	if err := s.integer(); err != nil {
		return err
	}
	if s.at('.') {
		s.i++
		if err := s.digits("after decimal point in numeric literal"); err != nil {
			return err
		}
	}
	if s.at('e') || s.at('E') {
		s.i++
		if s.at('+') || s.at('-') {
			s.i++
		}
		return s.digits("in exponent of numeric literal")
	}
	return nil
}

// integer consumes the integer part of a number: 0 or a run of digits that
// does not start with 0.
func (s *scanner) integer() error {
	if s.i >= len(s.data) {
		return s.eof()
	}
	switch c := s.data[s.i]; {
	case c == '0':
		s.i++
		return nil
	case isDigit(c):
		s.skipDigits()
		return nil
	}
	return s.badChar("in numeric literal")
}

// digits consumes one or more digits; where says what they belong to.
func (s *scanner) digits(where string) error {
	if s.i >= len(s.data) {
		return s.eof()
	}
	if !isDigit(s.data[s.i]) {
		return s.badChar(where)
	}
	s.skipDigits()
	return nil
}

// skipDigits consumes any digits at s.i.
func (s *scanner) skipDigits() {
	for s.i < len(s.data) && isDigit(s.data[s.i]) {
		s.i++
	}
}

// literal consumes the word true, false or null.
func (s *scanner) literal(word string) error {
	for j := range len(word) {
		if s.i >= len(s.data) {
			return s.eof()
		}
		if s.data[s.i] != word[j] {
			return s.badChar("in literal " + word + " (expecting " + quoteChar(word[j]) + ")")
		}
		s.i++
	}
	return nil
}

// at reports whether the byte at s.i is c.
func (s *scanner) at(c byte) bool {
	return s.i < len(s.data) && s.data[s.i] == c
}

// eof is the error for a text that stops in the middle of a value.
func (s *scanner) eof() error {
	return syntaxError(len(s.data), "unexpected end of JSON input")
}

// badChar is the error for an unexpected byte at s.i, worded like
// encoding/json's so that logs read the same whichever parser complained.
func (s *scanner) badChar(where string) error {
	return syntaxError(s.i, "invalid character "+quoteChar(s.data[s.i])+" "+where)
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool {
	return '0' <= c && c <= '9'
}

// hexValue returns the value of the hexadecimal digit c.
func hexValue(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}
