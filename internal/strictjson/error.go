package strictjson

import (
	"errors"
	"strconv"
)

// Error says what is wrong with a JSON text and where.
type Error struct {
	// Offset is the byte offset of the problem in the text.
	Offset int64
	// Reason describes the problem, for example `duplicate member name "name"`.
	Reason string

	// syntax is set when the text is not JSON at all, as opposed to JSON
	// that is well-formed but ambiguous or too deep.
	syntax bool
}

// Error returns "json: <reason> at offset <n>".
func (e *Error) Error() string {
	return "json: " + e.Reason + " at offset " + strconv.FormatInt(e.Offset, 10)
}

// IsSyntax reports whether err is a plain syntax error (not JSON at all), as
// opposed to JSON that is well-formed but ambiguous or too deep.
//
// The gateway answers the first with a JSON-RPC parse error (-32700) and the
// second with an invalid request (-32600).
func IsSyntax(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.syntax
}

// syntaxError returns an *Error for text that is not JSON.
func syntaxError(offset int, reason string) *Error {
	return &Error{Offset: int64(offset), Reason: reason, syntax: true}
}

// ambiguityError returns an *Error for well-formed JSON that Check refuses.
func ambiguityError(offset int, reason string) *Error {
	return &Error{Offset: int64(offset), Reason: reason}
}

// quoteChar formats a byte for a message the way encoding/json does, except
// that bytes above ASCII are shown in hex rather than as Latin-1 letters.
func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c >= 0x80:
		return `'\x` + strconv.FormatUint(uint64(c), 16) + `'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}
