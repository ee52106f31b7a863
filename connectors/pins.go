package connectors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// pinVersion starts every pin of the current scope. A pin without it was
// made by an older version, over the description and schemas only (see
// olderHash), and is re-pinned to the current scope while the upstream
// still lists what it covered.
const pinVersion = "v2:"

// ToolDefinition is the part of a tool an agent relies on to decide what
// the tool does and what it sends: what a pin covers. Title and
// annotations are in it because agents and people act on them: an
// upstream that flips readOnlyHint or destructiveHint changes what the
// tool claims to do as much as one that rewrites its description.
type ToolDefinition struct {
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
}

// olderToolDefinition is what a pin covered before titles and annotations
// were pinned. Its fields, their order and tags must not change: the
// hashes of the pins that older versions stored depend on them.
type olderToolDefinition struct {
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
}

// DefinitionOf reads the pinned part of a tool as an upstream lists it.
// The schemas and the annotations are compacted and their keys sorted, so
// that a change of white space or key order is no change; annotations
// that are absent, null or {} are the same.
func DefinitionOf(raw []byte) (ToolDefinition, error) {
	var d ToolDefinition
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, err
	}
	for _, s := range []*json.RawMessage{&d.InputSchema, &d.OutputSchema, &d.Annotations} {
		var err error
		if *s, err = canonicalJSON(*s); err != nil {
			return d, err
		}
	}
	if bytes.Equal(d.Annotations, []byte("{}")) {
		d.Annotations = nil
	}
	return d, nil
}

// canonicalJSON compacts a JSON value and sorts its keys; null and absent
// are nil.
func canonicalJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v) // maps marshal with sorted keys
}

// Hash is the definition's pin: "v2:" and the SHA-256 of its canonical
// JSON, in hex.
func (d ToolDefinition) Hash() string {
	return pinOf(d)
}

// olderHash is the pin an older version made of the same tool: the
// SHA-256 of the description and schemas alone, with no version.
func (d ToolDefinition) olderHash() string {
	b, _ := json.Marshal(olderToolDefinition{d.Description, d.InputSchema, d.OutputSchema})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// state tells how the definition stands against pin.
func (d ToolDefinition) state(pin string) PinState {
	switch {
	case d.Hash() == pin:
		return PinMatches
	case !strings.HasPrefix(pin, pinVersion) && d.olderHash() == pin:
		return PinOlder
	}
	return PinChanged
}

// pinOf hashes a definition into a pin of the current scope.
func pinOf(d any) string {
	b, _ := json.Marshal(d)
	sum := sha256.Sum256(b)
	return pinVersion + hex.EncodeToString(sum[:])
}

// PromptDefinition is the part of a prompt that a pin covers: what a user
// picking it reads, and the arguments it asks for.
type PromptDefinition struct {
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	Arguments   []PromptArgument `json:"arguments,omitempty"`
}

// PromptArgument is one argument of a pinned prompt.
type PromptArgument struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// PromptDefinitionOf reads the pinned part of a prompt as an upstream
// lists it. Arguments are named, so their order is no change: they are
// sorted by name.
func PromptDefinitionOf(raw []byte) (PromptDefinition, error) {
	var d PromptDefinition
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, err
	}
	if len(d.Arguments) == 0 {
		d.Arguments = nil
	}
	slices.SortStableFunc(d.Arguments, func(a, b PromptArgument) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

// Hash is the prompt definition's pin, as ToolDefinition.Hash.
func (d PromptDefinition) Hash() string {
	return pinOf(d)
}

// PinState tells how an item an upstream lists stands against its pin.
type PinState int

// The states of a listed item against its pin.
const (
	// PinNone: the item has no pin.
	PinNone PinState = iota
	// PinMatches: the item is what an admin approved.
	PinMatches
	// PinOlder: the pin is an older version's, and what it covered has
	// not changed; the item is served, and is to be re-pinned to the
	// current scope.
	PinOlder
	// PinChanged: the item changed, or does not parse. It is drift, held
	// back until an admin approves it.
	PinChanged
)

// PinKind names what a pin is of.
type PinKind string

// The kinds of pinned item.
const (
	ToolPin   PinKind = "tool"
	PromptPin PinKind = "prompt"
)

// Check tells how the listed tool raw stands against its pin, if the
// policy pins it. A tool that does not parse has changed.
func (p ToolPolicy) Check(name string, raw []byte) PinState {
	pin, ok := p.Pins[name]
	if !ok {
		return PinNone
	}
	d, err := DefinitionOf(raw)
	if err != nil {
		return PinChanged
	}
	return d.state(pin)
}

// Pinned reports whether the listed tool raw still matches its pin, if
// the policy pins it. A tool that does not parse matches no pin.
func (p ToolPolicy) Pinned(name string, raw []byte) bool {
	return p.Check(name, raw) != PinChanged
}

// PromptPolicy is a tool selection's say over a connector's prompts.
type PromptPolicy struct {
	// Allow lists the upstream prompt names that enter the catalog; nil
	// means all of them, and an empty list none.
	Allow []string
	// Pins maps a prompt name to the hash of its approved definition
	// (see PromptDefinition).
	Pins map[string]string
}

// Allows reports whether the upstream prompt name enters the catalog.
func (p PromptPolicy) Allows(name string) bool {
	return p.Allow == nil || slices.Contains(p.Allow, name)
}

// Check tells how the listed prompt raw stands against its pin, if the
// policy pins it. A prompt that does not parse has changed.
func (p PromptPolicy) Check(name string, raw []byte) PinState {
	pin, ok := p.Pins[name]
	if !ok {
		return PinNone
	}
	d, err := PromptDefinitionOf(raw)
	if err != nil || d.Hash() != pin {
		return PinChanged
	}
	return PinMatches
}

// Change is one field of a drifted definition, before and after. Schemas,
// annotations and arguments are compact JSON.
type Change struct {
	Approved any `json:"approved"`
	Upstream any `json:"upstream"`
}

// diffTool lists the fields of a tool definition that changed. Against a
// pin of an older version only what that pin covered is compared: the
// title and annotations it never saw are not what changed.
func diffTool(approved, upstream ToolDefinition, older bool) map[string]Change {
	out := map[string]Change{}
	diffText(out, "description", approved.Description, upstream.Description)
	diffJSON(out, "inputSchema", approved.InputSchema, upstream.InputSchema)
	diffJSON(out, "outputSchema", approved.OutputSchema, upstream.OutputSchema)
	if !older {
		diffText(out, "title", approved.Title, upstream.Title)
		diffAnnotations(out, approved.Annotations, upstream.Annotations)
	}
	return out
}

// diffPrompt lists the fields of a prompt definition that changed.
func diffPrompt(approved, upstream PromptDefinition) map[string]Change {
	out := map[string]Change{}
	diffText(out, "title", approved.Title, upstream.Title)
	diffText(out, "description", approved.Description, upstream.Description)
	a, _ := json.Marshal(approved.Arguments)
	u, _ := json.Marshal(upstream.Arguments)
	diffJSON(out, "arguments", a, u)
	return out
}

// diffText notes field when a and u differ.
func diffText(out map[string]Change, field, a, u string) {
	if a != u {
		out[field] = Change{a, u}
	}
}

// diffJSON notes field when the canonical JSON values a and u differ.
func diffJSON(out map[string]Change, field string, a, u json.RawMessage) {
	if !bytes.Equal(a, u) {
		out[field] = Change{a, u}
	}
}

// diffAnnotations notes each annotation that changed, as
// "annotations.<key>" (absent is null), so that a flipped readOnlyHint is
// named; annotations that are not an object change as a whole.
func diffAnnotations(out map[string]Change, a, u json.RawMessage) {
	if bytes.Equal(a, u) {
		return
	}
	am, aok := annotationMap(a)
	um, uok := annotationMap(u)
	if !aok || !uok {
		out["annotations"] = Change{a, u}
		return
	}
	for _, k := range slices.Sorted(maps.Keys(mergeKeys(am, um))) {
		diffJSON(out, "annotations."+k, am[k], um[k])
	}
}

// annotationMap reads canonical annotations as an object; nil is empty.
func annotationMap(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	m := map[string]json.RawMessage{}
	if raw == nil {
		return m, true
	}
	return m, json.Unmarshal(raw, &m) == nil
}

// mergeKeys returns the set of keys of a and b.
func mergeKeys(a, b map[string]json.RawMessage) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
