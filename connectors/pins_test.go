package connectors

import "testing"

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
