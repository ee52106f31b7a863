package connectors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// ToolDefinition is the part of a tool an agent relies on to decide what
// the tool does and what it sends: what a pin covers.
type ToolDefinition struct {
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
}

// DefinitionOf reads the pinned part of a tool as an upstream lists it.
// The schemas are compacted and their keys sorted, so that a change of
// white space or key order is no change.
func DefinitionOf(raw []byte) (ToolDefinition, error) {
	var d ToolDefinition
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, err
	}
	for _, s := range []*json.RawMessage{&d.InputSchema, &d.OutputSchema} {
		if len(*s) == 0 || bytes.Equal(*s, []byte("null")) {
			*s = nil
			continue
		}
		var v any
		if err := json.Unmarshal(*s, &v); err != nil {
			return d, err
		}
		*s, _ = json.Marshal(v) // maps marshal with sorted keys
	}
	return d, nil
}

// Hash is the definition's pin: SHA-256 of its canonical JSON, in hex.
func (d ToolDefinition) Hash() string {
	b, _ := json.Marshal(d)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Pinned reports whether the listed tool raw still matches its pin, if
// the policy pins it. A tool that does not parse matches no pin.
func (p ToolPolicy) Pinned(name string, raw []byte) bool {
	pin, ok := p.Pins[name]
	if !ok {
		return true
	}
	d, err := DefinitionOf(raw)
	return err == nil && d.Hash() == pin
}
