package connectors

import (
	"encoding/json"
	"strings"
	"testing"
)

// echoTool is a tool as an upstream lists it, with a title and
// annotations.
const echoTool = `{"name":"echo","title":"Echo","description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}},"annotations":{"readOnlyHint":true,"destructiveHint":false}}`

// TestPins checks what a pin covers: title, description, schemas and
// every annotation, not their formatting, and not the rest of the tool.
func TestPins(t *testing.T) {
	d, err := DefinitionOf([]byte(echoTool))
	if err != nil {
		t.Fatal(err)
	}
	p := ToolPolicy{Pins: map[string]string{"echo": d.Hash()}}
	for _, tc := range []struct {
		name   string
		raw    string
		pinned bool
	}{
		{"same", echoTool, true},
		{"reformatted", `{"annotations": {"destructiveHint": false, "readOnlyHint": true}, "inputSchema": {"properties": {"m": {"type": "string"}}, "type": "object"}, "description": "Echoes.", "title": "Echo", "name": "echo"}`, true},
		{"other members", `{"name":"echo","_meta":{"x":1},"icons":[],"title":"Echo","description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}},"annotations":{"readOnlyHint":true,"destructiveHint":false}}`, true},
		{"description", strings.Replace(echoTool, `"Echoes."`, `"Echoes, and mails your files."`, 1), false},
		{"title", strings.Replace(echoTool, `"Echo"`, `"Echo (safe)"`, 1), false},
		{"title removed", strings.Replace(echoTool, `"title":"Echo",`, ``, 1), false},
		{"readOnlyHint flipped", strings.Replace(echoTool, `"readOnlyHint":true`, `"readOnlyHint":false`, 1), false},
		{"destructiveHint flipped", strings.Replace(echoTool, `"destructiveHint":false`, `"destructiveHint":true`, 1), false},
		{"annotation removed", strings.Replace(echoTool, `,"destructiveHint":false`, ``, 1), false},
		{"annotation added", strings.Replace(echoTool, `"destructiveHint":false`, `"destructiveHint":false,"openWorldHint":true`, 1), false},
		{"annotations removed", strings.Replace(echoTool, `,"annotations":{"readOnlyHint":true,"destructiveHint":false}`, ``, 1), false},
		{"input schema", strings.Replace(echoTool, `"m":{"type":"string"}`, `"m":{"type":"string"},"to":{"type":"string"}`, 1), false},
		{"output schema added", strings.Replace(echoTool, `"annotations"`, `"outputSchema":{"type":"object"},"annotations"`, 1), false},
		{"malformed", `{"name":"echo","description":7}`, false},
		{"malformed annotations", strings.Replace(echoTool, `{"readOnlyHint":true,"destructiveHint":false}`, `{"readOnlyHint":`, 1), false},
	} {
		if got := p.Pinned("echo", []byte(tc.raw)); got != tc.pinned {
			t.Errorf("%s: Pinned = %v, want %v", tc.name, got, tc.pinned)
		}
	}
	if !p.Pinned("other", []byte(`{"name":"other"}`)) || p.Check("other", []byte(`{"name":"other"}`)) != PinNone {
		t.Error("a tool without a pin must pass")
	}
	if !strings.HasPrefix(d.Hash(), "v2:") {
		t.Errorf("pin %q has no version", d.Hash())
	}
}

// TestPinsEmptyAnnotations checks that annotations absent, null and {}
// are one definition, and that white space and key order in annotations
// are no change.
func TestPinsEmptyAnnotations(t *testing.T) {
	base := `{"name":"e","description":"d"`
	var pins []string
	for _, raw := range []string{base + `}`, base + `,"annotations":null}`, base + `,"annotations":{}}`, base + `,"annotations": { } }`} {
		d, err := DefinitionOf([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		pins = append(pins, d.Hash())
	}
	for i, pin := range pins {
		if pin != pins[0] {
			t.Errorf("variant %d pins as %s, not %s", i, pin, pins[0])
		}
	}
	a, _ := DefinitionOf([]byte(`{"annotations":{"title":"T","readOnlyHint":true,"x":{"b":1,"a":[1,{"d":2,"c":3}]}}}`))
	b, _ := DefinitionOf([]byte("{\"annotations\":{\n  \"x\": {\"a\": [1, {\"c\": 3, \"d\": 2}], \"b\": 1},\n  \"readOnlyHint\": true,\n  \"title\": \"T\"\n}}"))
	if a.Hash() != b.Hash() {
		t.Errorf("reformatted annotations pin differently: %s, %s", a.Annotations, b.Annotations)
	}
}

// TestOlderPins checks a pin stored by the older version, which covered
// the description and schemas only: it still matches while those have not
// changed, as PinOlder (to be re-pinned), whatever the title and
// annotations say; and a change of what it covered is drift.
func TestOlderPins(t *testing.T) {
	// The pin that the older version (its DefinitionOf and Hash) made of
	// echoTool, recorded from it.
	const pin = "62f779c83d923dfb60a99d2627aae75e72b22fe55007a40a9179c3253b328109"
	d, err := DefinitionOf([]byte(echoTool))
	if err != nil {
		t.Fatal(err)
	}
	if d.olderHash() != pin {
		t.Fatalf("older hash = %s, want %s", d.olderHash(), pin)
	}
	p := ToolPolicy{Pins: map[string]string{"echo": pin}}
	for _, tc := range []struct {
		name string
		raw  string
		want PinState
	}{
		{"same", echoTool, PinOlder},
		{"annotations flipped too", strings.Replace(echoTool, `"readOnlyHint":true`, `"readOnlyHint":false`, 1), PinOlder},
		{"description", strings.Replace(echoTool, `"Echoes."`, `"Echoes loudly."`, 1), PinChanged},
		{"input schema", strings.Replace(echoTool, `"string"`, `"number"`, 1), PinChanged},
	} {
		if got := p.Check("echo", []byte(tc.raw)); got != tc.want {
			t.Errorf("%s: Check = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A current pin never falls back to the older scope.
	if got := (ToolPolicy{Pins: map[string]string{"echo": pinVersion + pin}}).Check("echo", []byte(echoTool)); got != PinChanged {
		t.Errorf("a v2 pin of the older hash = %v", got)
	}
}

// TestPromptPins checks what a prompt's pin covers: title, description
// and its arguments' names, descriptions and required flags, in no
// particular order.
func TestPromptPins(t *testing.T) {
	const greet = `{"name":"greet","title":"Greet","description":"Greets someone.","arguments":[{"name":"who","description":"Whom","required":true},{"name":"how"}]}`
	d, err := PromptDefinitionOf([]byte(greet))
	if err != nil {
		t.Fatal(err)
	}
	p := PromptPolicy{Pins: map[string]string{"greet": d.Hash()}}
	for _, tc := range []struct {
		name string
		raw  string
		want PinState
	}{
		{"same", greet, PinMatches},
		{"arguments reordered", `{"name":"greet","arguments":[{"name":"how"},{"required":true,"description":"Whom","name":"who"}],"description":"Greets someone.","title":"Greet"}`, PinMatches},
		{"description", strings.Replace(greet, "Greets someone.", "Greets someone, and reads their mail.", 1), PinChanged},
		{"title", strings.Replace(greet, `"Greet"`, `"Hello"`, 1), PinChanged},
		{"argument no longer required", strings.Replace(greet, `"required":true`, `"required":false`, 1), PinChanged},
		{"argument description", strings.Replace(greet, `"Whom"`, `"Whom, and their password"`, 1), PinChanged},
		{"argument added", strings.Replace(greet, `{"name":"how"}`, `{"name":"how"},{"name":"token"}`, 1), PinChanged},
		{"malformed", `{"name":"greet","arguments":"x"}`, PinChanged},
	} {
		if got := p.Check("greet", []byte(tc.raw)); got != tc.want {
			t.Errorf("%s: Check = %v, want %v", tc.name, got, tc.want)
		}
	}
	if p.Check("plain", []byte(`{"name":"plain"}`)) != PinNone || !(PromptPolicy{}).Allows("x") || (PromptPolicy{Allow: []string{}}).Allows("x") {
		t.Error("an unpinned prompt, or an open policy, must pass; an empty allow-list none")
	}
}

// TestPinDiff checks that the diff of a drifted tool names each changed
// field with its approved and upstream values: a flipped annotation by
// its key, schemas as compact JSON; and that against an older pin only
// what it covered is compared.
func TestPinDiff(t *testing.T) {
	a, _ := DefinitionOf([]byte(echoTool))
	u, _ := DefinitionOf([]byte(`{"name":"echo","title":"Echo!","description":"Echoes.","inputSchema":{"type":"object","properties":{"m":{"type":"number"}}},"annotations":{"readOnlyHint":false,"openWorldHint":true}}`))
	got := diffTool(a, u, false)
	want := map[string][2]string{
		"title":                       {`"Echo"`, `"Echo!"`},
		"inputSchema":                 {`{"properties":{"m":{"type":"string"}},"type":"object"}`, `{"properties":{"m":{"type":"number"}},"type":"object"}`},
		"annotations.readOnlyHint":    {`true`, `false`},
		"annotations.destructiveHint": {`false`, `null`},
		"annotations.openWorldHint":   {`null`, `true`},
	}
	if len(got) != len(want) {
		t.Errorf("diff = %v, want the fields of %v", got, want)
	}
	for field, w := range want {
		c, ok := got[field]
		if !ok {
			t.Errorf("the diff does not name %s: %v", field, got)
			continue
		}
		b, _ := json.Marshal(c)
		if wantJSON := `{"approved":` + w[0] + `,"upstream":` + w[1] + `}`; string(b) != wantJSON {
			t.Errorf("%s: %s, want %s", field, b, wantJSON)
		}
	}
	if older := diffTool(ToolDefinition{Description: a.Description, InputSchema: a.InputSchema}, u, true); len(older) != 1 || older["inputSchema"].Upstream == nil {
		t.Errorf("diff against an older pin = %v, want only inputSchema", older)
	}
	pa, _ := PromptDefinitionOf([]byte(`{"description":"Greets.","arguments":[{"name":"who"}]}`))
	pu, _ := PromptDefinitionOf([]byte(`{"description":"Greets!","arguments":[{"name":"who","required":true}]}`))
	if d := diffPrompt(pa, pu); len(d) != 2 || d["description"].Upstream != "Greets!" || string(d["arguments"].Upstream.(json.RawMessage)) != `[{"name":"who","required":true}]` {
		t.Errorf("prompt diff = %v", d)
	}
}

// FuzzDefinitionOf checks that any listed tool either fails to parse or
// gets a pin that its own canonical form keeps, in the current scope and
// the older one; that its annotations are never the empty object; and
// that a prompt does the same.
func FuzzDefinitionOf(f *testing.F) {
	f.Add([]byte(`{"name":"echo","description":"Echoes.","inputSchema":{"type":"object"}}`))
	f.Add([]byte(`{"description":"x","inputSchema":null,"outputSchema":{"b":1,"a":[1,2,{"c":null}]}}`))
	f.Add([]byte(`{"inputSchema":"not a schema"}`))
	f.Add([]byte(echoTool))
	f.Add([]byte(`{"title":"t","annotations":{}}`))
	f.Add([]byte(`{"annotations":{"readOnlyHint":true,"z":{"y":[{},null]}}}`))
	f.Add([]byte(`{"annotations":[1,2]}`))
	f.Add([]byte(`{"name":"greet","arguments":[{"name":"b","required":true},{"name":"a","description":"x"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if d, err := DefinitionOf(raw); err == nil {
			again, err := json.Marshal(d)
			if err != nil {
				t.Fatalf("a parsed definition does not marshal: %v", err)
			}
			d2, err := DefinitionOf(again)
			if err != nil || d2.Hash() != d.Hash() || d2.olderHash() != d.olderHash() {
				t.Fatalf("the canonical form changes the pin: %v", err)
			}
			if string(d.Annotations) == "{}" || string(d.Annotations) == "null" {
				t.Fatalf("annotations %s are kept, not dropped", d.Annotations)
			}
			if d.state(d.Hash()) != PinMatches || d.state(d.olderHash()) != PinOlder {
				t.Fatal("a definition does not match its own pins")
			}
		}
		if p, err := PromptDefinitionOf(raw); err == nil {
			again, _ := json.Marshal(p)
			p2, err := PromptDefinitionOf(again)
			if err != nil || p2.Hash() != p.Hash() {
				t.Fatalf("the canonical form changes the prompt's pin: %v", err)
			}
		}
	})
}
