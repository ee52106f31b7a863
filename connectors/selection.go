package connectors

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"time"
)

// Selection is an admin's choice of a connector's tools: which tools enter
// the catalog, with which operation, each pinned to the definition the
// admin saw. A connector with a selection serves only its tools.
type Selection struct {
	// Tools are the selected tools by upstream name.
	Tools map[string]SelectedTool `json:"tools"`
	// Updated is when an admin last changed the selection.
	Updated time.Time `json:"updated"`
}

// SelectedTool is one tool of a selection.
type SelectedTool struct {
	// Operation is the fact the admin chose.
	Operation Operation `json:"operation"`
	// Definition is what the admin approved; Pin is its hash.
	Definition ToolDefinition `json:"definition"`
	Pin        string         `json:"pin"`
	// Drift is the upstream's changed definition, which keeps the tool out
	// of the catalog until an admin approves it.
	Drift *ToolDefinition `json:"drift,omitempty"`
	// DriftSeen is when the change was first seen.
	DriftSeen time.Time `json:"drift_seen,omitzero"`
}

// Want is one entry of a request to select tools: a name or a glob in the
// syntax of path.Match, with the operation the admin chose; without one,
// the annotations decide.
type Want struct {
	Name      string    `json:"name"`
	Operation Operation `json:"operation,omitempty"`
}

// Validate checks an entry before any upstream is asked.
func (w Want) Validate() error {
	if w.Name == "" {
		return errors.New("a tool name is empty")
	}
	if _, err := path.Match(w.Name, ""); err != nil {
		return fmt.Errorf("tool pattern %q is not a valid glob: %v", w.Name, err)
	}
	if w.Operation != "" {
		if _, err := ParseOperation(string(w.Operation)); err != nil {
			return fmt.Errorf("tool %q: %v", w.Name, err)
		}
	}
	return nil
}

// ReadOnlyHint reports whether a tool, as an upstream lists it, says it
// only reads (annotations.readOnlyHint).
func ReadOnlyHint(raw []byte) bool {
	var t struct {
		Annotations struct {
			ReadOnlyHint *bool `json:"readOnlyHint"`
		} `json:"annotations"`
	}
	return json.Unmarshal(raw, &t) == nil && t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint
}

// toolName reads a listed tool's name; "" when it has none.
func toolName(raw []byte) string {
	var t struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &t)
	return t.Name
}

// newSelection selects, of the tools c's upstream lists now, those that
// want names, pinning each definition. The last entry that matches a tool
// decides its operation. Every entry must match some tool.
func newSelection(c *Connector, listed []json.RawMessage, want []Want, now time.Time) (*Selection, error) {
	sel := &Selection{Tools: map[string]SelectedTool{}, Updated: now}
	matched := make([]bool, len(want))
	for _, raw := range listed {
		name := toolName(raw)
		if name == "" {
			continue
		}
		for i, w := range want {
			if ok, _ := path.Match(w.Name, name); !ok {
				continue
			}
			def, err := DefinitionOf(raw)
			if err != nil {
				return nil, errorf(KindUpstream, "tool %s of %s has a malformed definition: %v", name, c.ID, err)
			}
			op := cmp.Or(w.Operation, c.Tools.Operation(name, ReadOnlyHint(raw)))
			sel.Tools[name] = SelectedTool{Operation: op, Definition: def, Pin: def.Hash()}
			matched[i] = true
		}
	}
	if i := slices.Index(matched, false); i >= 0 {
		return nil, errorf(KindInvalid, "no tool of %s matches %q", c.ID, want[i].Name)
	}
	return sel, nil
}

// clone returns a copy of s that can change without changing s.
func (s *Selection) clone() *Selection {
	out := *s
	out.Tools = maps.Clone(s.Tools)
	return &out
}

// apply returns c with the selection in force: only selected tools enter
// the catalog (and of those only what the config allows), with the admin's
// operations, each pinned.
func (s *Selection) apply(c *Connector) *Connector {
	out := *c
	p := ToolPolicy{Allow: []string{}, Operations: maps.Clone(c.Tools.Operations), Pins: map[string]string{}}
	if p.Operations == nil {
		p.Operations = map[string]Operation{}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Tools)) {
		if !c.Tools.Allows(name) {
			continue
		}
		t := s.Tools[name]
		p.Allow = append(p.Allow, name)
		p.Operations[name] = t.Operation
		p.Pins[name] = t.Pin
	}
	out.Tools = p
	return &out
}

// Drifted lists the selected tools whose definition changed upstream, in
// name order.
func (s *Selection) Drifted() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s.Tools)) {
		if s.Tools[name].Drift != nil {
			out = append(out, name)
		}
	}
	return out
}

// SelectionView is one tool of a selection as an admin sees it.
type SelectionView struct {
	Name      string    `json:"name"`
	Operation Operation `json:"operation"`
	Pin       string    `json:"pin"`
	// Drift shows what changed upstream, field by field, while the tool
	// is hidden awaiting approval.
	Drift     map[string]Change `json:"drift,omitempty"`
	DriftSeen time.Time         `json:"drift_seen,omitzero"`
}

// Change is one field of a drifted definition, before and after.
type Change struct {
	Approved any `json:"approved"`
	Upstream any `json:"upstream"`
}

// View shows the selection in name order; nil shows as nil.
func (s *Selection) View() []SelectionView {
	if s == nil {
		return nil
	}
	out := []SelectionView{}
	for _, name := range slices.Sorted(maps.Keys(s.Tools)) {
		t := s.Tools[name]
		v := SelectionView{Name: name, Operation: t.Operation, Pin: t.Pin}
		if t.Drift != nil {
			v.Drift, v.DriftSeen = diff(t.Definition, *t.Drift), t.DriftSeen
		}
		out = append(out, v)
	}
	return out
}

// diff lists the fields of a definition that changed.
func diff(approved, upstream ToolDefinition) map[string]Change {
	out := map[string]Change{}
	if approved.Description != upstream.Description {
		out["description"] = Change{approved.Description, upstream.Description}
	}
	for _, f := range []struct {
		name string
		a, u json.RawMessage
	}{{"inputSchema", approved.InputSchema, upstream.InputSchema}, {"outputSchema", approved.OutputSchema, upstream.OutputSchema}} {
		if string(f.a) != string(f.u) {
			out[f.name] = Change{f.a, f.u}
		}
	}
	return out
}

// DiscoveredTool is one tool as the upstream lists it now, for an admin
// choosing a selection.
type DiscoveredTool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Operation is pre-classified from the annotations: read when the
	// upstream says readOnlyHint, else write; or the selection's.
	Operation Operation `json:"operation"`
	// Registered tells whether the selection has it; Drifted whether its
	// definition differs from the approved one.
	Registered bool `json:"registered"`
	Drifted    bool `json:"drifted,omitempty"`
}

// Discover shows the tools c's upstream lists now against the selection
// s, which may be nil.
func Discover(c *Connector, s *Selection, listed []json.RawMessage) []DiscoveredTool {
	out := []DiscoveredTool{}
	for _, raw := range listed {
		var t struct {
			Name        string `json:"name"`
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		dt := DiscoveredTool{Name: t.Name, Title: t.Title, Description: t.Description, Operation: c.Tools.Operation(t.Name, ReadOnlyHint(raw))}
		if s != nil {
			if st, ok := s.Tools[t.Name]; ok {
				dt.Registered, dt.Operation = true, st.Operation
				def, err := DefinitionOf(raw)
				dt.Drifted = err != nil || def.Hash() != st.Pin
			}
		}
		out = append(out, dt)
	}
	return out
}
