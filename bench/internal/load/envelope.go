package load

import (
	"bytes"
	"errors"
	"strings"
)

// errEnvelope reports a reply whose top level is not a JSON object.
var errEnvelope = errors.New("malformed JSON-RPC envelope")

// reply is what the client reads of one JSON-RPC response: the raw
// values of its "result" and "error" members (nil when absent) and, for a
// list result, its nextCursor as sent (a JSON string, nil when absent).
type reply struct {
	result, rpcErr, nextCursor []byte
}

// envelope reads the JSON object msg as a JSON-RPC response. It walks the
// top level, and the top level of an object result for its nextCursor,
// skipping nested values without decoding or fully validating them, so
// that a large list costs one pass over its bytes and no allocation.
func envelope(msg []byte) (reply, error) {
	var r reply
	_, err := object(msg, 0, func(name []byte, start int) (int, error) {
		switch string(name) {
		case "result":
			end, err := r.readResult(msg, start)
			r.result = msg[start:end]
			return end, err
		case "error":
			end := skipValue(msg, start)
			r.rpcErr = msg[start:end]
			return end, nil
		}
		return skipValue(msg, start), nil
	})
	return r, err
}

// readResult walks the result that starts at msg[start] and returns the
// index just past it, keeping its nextCursor; a result that is not an
// object is skipped whole.
func (r *reply) readResult(msg []byte, start int) (int, error) {
	if start >= len(msg) || msg[start] != '{' {
		return skipValue(msg, start), nil
	}
	return object(msg, start, func(name []byte, start int) (int, error) {
		end := skipValue(msg, start)
		if string(name) == "nextCursor" {
			if start >= len(msg) || msg[start] != '"' {
				return end, errors.New("nextCursor is not a string")
			}
			r.nextCursor = msg[start:end]
		}
		return end, nil
	})
}

// object walks the members of the JSON object that starts at b[i]. It
// calls member with each name (raw, without its quotes) and the index
// where its value starts; member returns the index just past the value.
// object returns the index just past the object.
func object(b []byte, i int, member func(name []byte, start int) (int, error)) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return i, errEnvelope
	}
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		if b[i] != '"' {
			return i, errEnvelope
		}
		end := skipString(b, i)
		if end >= len(b) {
			return i, errEnvelope
		}
		name := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, errEnvelope
		}
		var err error
		if i, err = member(name, skipSpace(b, i+1)); err != nil {
			return i, err
		}
		if i = skipSpace(b, i); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if i >= len(b) {
		return i, errEnvelope
	}
	return i + 1, nil
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at the
// quote b[i], honouring backslash escapes. It jumps from quote to quote
// (bytes.IndexByte), since most of a tool list is strings: a quote ends
// the string unless an odd run of backslashes escapes it.
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		q := i + j
		escapes := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
	return len(b)
}

// skipValue returns the index just past the value that starts at b[i]:
// a string, an object or array (however nested), or a scalar.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		return skipNested(b, i)
	}
	for i < len(b) && strings.IndexByte(",}] \t\r\n", b[i]) < 0 {
		i++
	}
	return i
}

// skipNested returns the index just past the object or array at b[i].
func skipNested(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return len(b)
}
