package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// These helpers read JSON with encoding/json's tokenizer, an implementation
// independent of Check's, so the tests can say what Check should decide.

// newDecoder returns a decoder that keeps numbers as written, so that big
// numbers such as 1e400 decode instead of overflowing float64.
func newDecoder(data []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec
}

// decodeLastWins decodes data the way encoding/json does: the last of
// duplicate members wins.
func decodeLastWins(data []byte) (any, error) {
	var v any
	err := newDecoder(data).Decode(&v)
	return v, err
}

// decodeFirstWins decodes data keeping the first of duplicate members, the
// reading of many parsers other than encoding/json.
func decodeFirstWins(data []byte) (any, error) {
	dec := newDecoder(data)
	v, err := readFirstWins(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

// readFirstWins reads one value from dec, keeping first duplicates.
func readFirstWins(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := readFirstWins(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err = dec.Token()
		return a, err
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			key, _ := dec.Token()
			v, err := readFirstWins(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := m[key.(string)]; !dup {
				m[key.(string)] = v
			}
		}
		_, err = dec.Token()
		return m, err
	}
	return tok, nil
}

// shape is what the tokenizer oracle learns about a valid JSON text.
type shape struct {
	depth     int  // deepest nesting of arrays and objects
	ambiguous bool // some object has two names equal under strings.EqualFold
}

// shapeOf walks a text that json.Valid accepts.
func shapeOf(data []byte) (shape, error) {
	var sh shape
	err := walkShape(newDecoder(data), 0, &sh)
	return sh, err
}

// walkShape reads one value at the given depth into sh.
func walkShape(dec *json.Decoder, depth int, sh *shape) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	sh.depth = max(sh.depth, depth+1)
	var keys []string
	for dec.More() {
		if d == '{' {
			key, _ := dec.Token()
			keys = append(keys, key.(string))
		}
		if err := walkShape(dec, depth+1, sh); err != nil {
			return err
		}
	}
	sh.ambiguous = sh.ambiguous || foldClash(keys)
	_, err = dec.Token()
	return err
}

// foldClash reports whether two of keys are equal under strings.EqualFold.
func foldClash(keys []string) bool {
	for i := range keys {
		for j := range i {
			if strings.EqualFold(keys[i], keys[j]) {
				return true
			}
		}
	}
	return false
}
