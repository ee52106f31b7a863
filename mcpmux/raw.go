package mcpmux

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unsafe"
)

// The gateway never re-serialises what an upstream or an agent sent through
// Go structs: a struct with omitempty drops fields it does not know. It
// finds and splices the few members it must read or rewrite (id, name, uri,
// _meta) in the raw bytes instead, and passes everything else through as is.
// Every text these helpers see has already passed strictjson.Check, so they
// can assume well-formed JSON with unique member names.

// errNotObject is every scanner's failure: the text is not the object it
// should be. The strict check has described real syntax errors already.
var errNotObject = errors.New("not a JSON object")

// span is a member's value within an object: data[start:end].
type span struct{ start, end int }

// members calls fn with each top-level member of the object in data, in
// order, until fn returns false. key is the raw key without its quotes,
// unescaped only when it has escapes. Unescaped, because that is the name
// every other parser reads: "na\u006de" is the member "name", and a scanner
// that compared the raw text would miss the member the upstream obeys.
func members(data []byte, fn func(key string, value span) bool) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errNotObject
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil
	}
	for i < len(data) {
		kEnd, err := skipString(data, i)
		if err != nil {
			return err
		}
		key, err := keyString(data[i:kEnd])
		if err != nil {
			return err
		}
		i = skipSpace(data, kEnd)
		if i >= len(data) || data[i] != ':' {
			return errNotObject
		}
		vStart := skipSpace(data, i+1)
		vEnd, err := skipValue(data, vStart)
		if err != nil {
			return err
		}
		if !fn(key, span{vStart, vEnd}) {
			return nil
		}
		i = skipSpace(data, vEnd)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}
		if i < len(data) && data[i] == '}' {
			return nil
		}
		return errNotObject
	}
	return errNotObject
}

// member returns the raw value of the named top-level member, or nil.
func member(data []byte, name string) json.RawMessage {
	var out json.RawMessage
	_ = members(data, func(key string, v span) bool {
		if key == name {
			out = data[v.start:v.end]
			return false
		}
		return true
	})
	return out
}

// stringMember returns the named top-level member when it is a string.
func stringMember(data []byte, name string) (string, bool) {
	raw := member(data, name)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	s, err := unquote(raw)
	return s, err == nil
}

// setMember returns a copy of the object with the named member's value
// replaced by value, or appended when absent. A nil value removes it.
// Every other byte stays as it was, members the gateway does not know
// included; data itself is never changed, which keyString relies on.
func setMember(data []byte, name string, value []byte) ([]byte, error) {
	found := span{-1, -1}
	var prevEnd, nextStart int
	last := -1
	err := members(data, func(key string, v span) bool {
		if key == name {
			found = v
			return false
		}
		last = v.end
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data)+len(name)+len(value)+4)
	if found.start >= 0 {
		if value != nil {
			out = append(out, data[:found.start]...)
			out = append(out, value...)
			return append(out, data[found.end:]...), nil
		}
		prevEnd, nextStart = memberBounds(data, found, last)
		out = append(out, data[:prevEnd]...)
		return append(out, data[nextStart:]...), nil
	}
	if value == nil {
		return data, nil
	}
	// members accepted data as one object, so its last '}' closes it;
	// the new member goes before, after a comma unless it is the first.
	closing := bytes.LastIndexByte(data, '}')
	out = append(out, data[:closing]...)
	if last >= 0 {
		out = append(out, ',')
	}
	out = strconv.AppendQuote(out, name)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, data[closing:]...), nil
}

// memberBounds returns the byte range to cut to remove the member whose
// value is v, including its key and one adjoining comma: the comma before
// it, or for the first member the one after, so that what remains is
// still an object.
func memberBounds(data []byte, v span, prevValueEnd int) (int, int) {
	after := skipSpace(data, v.end)
	if prevValueEnd >= 0 {
		// Cut from the end of the previous value, taking the comma before.
		return prevValueEnd, v.end
	}
	// First member: cut from the opening brace to past the comma after.
	open := skipSpace(data, 0) + 1
	if after < len(data) && data[after] == ',' {
		return open, skipSpace(data, after+1)
	}
	return open, after
}

// skipSpace returns the index of the first byte at or after i that is not
// one of JSON's four white space characters.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts at i.
func skipString(data []byte, i int) (int, error) {
	if i >= len(data) || data[i] != '"' {
		return 0, errNotObject
	}
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			// Skips the escaped byte, so that \" does not end the string;
			// the escape's validity is the strict check's business.
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errNotObject
}

// skipValue returns the index just past the value that starts at i.
func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errNotObject
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				end, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errNotObject
	}
	// A number, true, false or null: it runs to the next delimiter, and
	// the strict check has made sure it is one of those.
	start := i
	for ; i < len(data); i++ {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == start {
				return 0, errNotObject
			}
			return i, nil
		}
	}
	return i, nil
}

// keyString returns a quoted key's text. A key without escapes is returned
// without a copy, as a string that shares data's bytes: scanning a message
// then allocates nothing per member. The gateway never changes a JSON
// buffer once it is made (setMember builds a new one), so the string stays
// what it was for as long as it is kept.
func keyString(quoted []byte) (string, error) {
	body := quoted[1 : len(quoted)-1]
	if len(body) == 0 || !plain(body) {
		return unquote(quoted)
	}
	return unsafe.String(&body[0], len(body)), nil
}

// unquote decodes a JSON string literal.
func unquote(quoted []byte) (string, error) {
	if n := len(quoted); n >= 2 && quoted[0] == '"' && quoted[n-1] == '"' && plain(quoted[1:n-1]) {
		return string(quoted[1 : n-1]), nil
	}
	var s string
	err := json.Unmarshal(quoted, &s)
	return s, err
}

// quote encodes s as a JSON string literal. Plain ASCII is copied as is,
// with no reflection; anything else goes through encoding/json, which
// knows every escape.
func quote(s string) []byte {
	return appendQuote(make([]byte, 0, len(s)+2), s)
}

// appendQuote appends s to out as a JSON string literal, as quote makes it.
func appendQuote(out []byte, s string) []byte {
	if plain([]byte(s)) {
		out = append(out, '"')
		out = append(out, s...)
		return append(out, '"')
	}
	b, _ := json.Marshal(s)
	return append(out, b...)
}

// plain reports whether a string literal's body needs no decoding: no
// escapes, quotes or control characters, and only ASCII.
func plain(body []byte) bool {
	for _, c := range body {
		if c < ' ' || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}
