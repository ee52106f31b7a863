package approvals

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
)

// emptyArguments is the canonical form of a call with no arguments.
var emptyArguments = []byte("{}")

// Canonical returns the canonical JSON of a tool call's arguments: object
// members sorted by name (byte order of their UTF-8), no white space
// between tokens, numbers exactly as written, strings re-escaped one way.
// Missing arguments, JSON null and {} are the same call, so all three are
// "{}". Two texts an upstream would read alike thus hash alike, and an
// approval of one is an approval of the other; a text two parsers could
// read differently (a duplicate member) is refused, as the mux refuses it.
func Canonical(raw json.RawMessage) ([]byte, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return emptyArguments, nil
	}
	if err := strictjson.Check(trimmed, nil); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber() // numbers as written: 1.0 and 1 are not one argument to every upstream
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("arguments must be a JSON object")
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeCanonical writes v, as decoded with UseNumber, in canonical form.
func writeCanonical(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case map[string]any:
		return writeObject(buf, t)
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case json.Number:
		buf.WriteString(string(t))
		return nil
	}
	return writeScalar(buf, v)
}

// writeObject writes an object with its members sorted by name.
func writeObject(buf *bytes.Buffer, m map[string]any) error {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	buf.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeScalar(buf, k); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := writeCanonical(buf, m[k]); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

// writeScalar writes a string, a boolean or null, with HTML characters
// left as they are: escaping is not the job of a hash's input.
func writeScalar(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("arguments: %w", err)
	}
	buf.Truncate(buf.Len() - 1) // Encode ends with a newline
	return nil
}

// Hash returns the SHA-256 of canonical arguments, in lowercase hex.
func Hash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}
