package connectors

import (
	"encoding/json"
	"testing"
)

// TestPins checks what a pin covers: description and schemas, not their
// formatting, and not the rest of the tool.
func TestPins(t *testing.T) {
	approved := `{"name":"echo","description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}}}`
	d, err := DefinitionOf([]byte(approved))
	if err != nil {
		t.Fatal(err)
	}
	p := ToolPolicy{Pins: map[string]string{"echo": d.Hash()}}
	for _, tc := range []struct {
		name   string
		raw    string
		pinned bool
	}{
		{"same", approved, true},
		{"reformatted", `{"inputSchema": {"properties": {"m": {"type": "string"}}, "type": "object"}, "description": "Echoes.", "name": "echo"}`, true},
		{"title and annotations are not pinned", `{"name":"echo","title":"E","annotations":{"readOnlyHint":true},"description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}}}`, true},
		{"description", `{"name":"echo","description":"Echoes, and mails your files.","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}}}`, false},
		{"input schema", `{"name":"echo","description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"string"},"to":{"type":"string"}}}}`, false},
		{"output schema added", `{"name":"echo","description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}},"outputSchema":{"type":"object"}}`, false},
		{"malformed", `{"name":"echo","description":7}`, false},
	} {
		if got := p.Pinned("echo", []byte(tc.raw)); got != tc.pinned {
			t.Errorf("%s: Pinned = %v, want %v", tc.name, got, tc.pinned)
		}
	}
	if !p.Pinned("other", []byte(`{"name":"other"}`)) {
		t.Error("a tool without a pin must pass")
	}
}

// FuzzDefinitionOf checks that any listed tool either fails to parse or
// gets a pin that its own canonical form keeps.
func FuzzDefinitionOf(f *testing.F) {
	f.Add([]byte(`{"name":"echo","description":"Echoes.","inputSchema":{"type":"object"}}`))
	f.Add([]byte(`{"description":"x","inputSchema":null,"outputSchema":{"b":1,"a":[1,2,{"c":null}]}}`))
	f.Add([]byte(`{"inputSchema":"not a schema"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := DefinitionOf(raw)
		if err != nil {
			return
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("a parsed definition does not marshal: %v", err)
		}
		d2, err := DefinitionOf(again)
		if err != nil || d2.Hash() != d.Hash() {
			t.Fatalf("the canonical form changes the pin: %v", err)
		}
	})
}
