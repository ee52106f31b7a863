package load

import (
	"errors"
	"strings"
)

// errEnvelope reports a reply whose top level is not a JSON object.
var errEnvelope = errors.New("malformed JSON-RPC envelope")

// envelope returns the raw values of the "result" and "error" members of
// the JSON object msg, nil when absent. It walks the top level only and
// skips nested values without decoding or fully validating them, so that
// a large result costs one pass over its bytes and no allocation.
func envelope(msg []byte) (result, rpcErr []byte, err error) {
	i := skipSpace(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return nil, nil, errEnvelope
	}
	for i = skipSpace(msg, i+1); i < len(msg) && msg[i] != '}'; {
		if msg[i] != '"' {
			return nil, nil, errEnvelope
		}
		end := skipString(msg, i)
		if end >= len(msg) {
			return nil, nil, errEnvelope
		}
		name := msg[i+1 : end-1]
		i = skipSpace(msg, end)
		if i >= len(msg) || msg[i] != ':' {
			return nil, nil, errEnvelope
		}
		start := skipSpace(msg, i+1)
		i = skipValue(msg, start)
		switch string(name) {
		case "result":
			result = msg[start:i]
		case "error":
			rpcErr = msg[start:i]
		}
		if i = skipSpace(msg, i); i < len(msg) && msg[i] == ',' {
			i = skipSpace(msg, i+1)
		}
	}
	if i >= len(msg) {
		return nil, nil, errEnvelope
	}
	return result, rpcErr, nil
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at the
// quote b[i], honouring backslash escapes.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
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
