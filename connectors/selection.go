package connectors

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// Selection is an admin's choice of a connector's tools: which tools enter
// the catalog, with which operation, each pinned to the definition the
// admin saw. A connector with a selection serves only its tools.
type Selection struct {
	// Tools are the selected tools by upstream name.
	Tools map[string]SelectedTool `json:"tools"`
	// Prompts are the selected prompts by upstream name, each pinned as
	// a tool is. Nil when the selection says nothing of prompts: then
	// every prompt is served, unpinned; empty serves none.
	Prompts map[string]SelectedPrompt `json:"prompts,omitzero"`
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

// SelectedPrompt is one prompt of a selection.
type SelectedPrompt struct {
	// Definition is what the admin approved; Pin is its hash.
	Definition PromptDefinition `json:"definition"`
	Pin        string           `json:"pin"`
	// Drift is the upstream's changed definition, which keeps the prompt
	// out of the catalog until an admin approves it.
	Drift *PromptDefinition `json:"drift,omitempty"`
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

// SelectionRequest is an admin's choice of a connector's tools and,
// optionally, prompts, with what the upstream lists now.
type SelectionRequest struct {
	// Tools are the wanted tools, and ListedTools the upstream's.
	Tools       []Want
	ListedTools []json.RawMessage
	// Prompts are the wanted prompts (names or globs, no operation), and
	// ListedPrompts the upstream's. Nil Prompts leaves prompts unselected
	// and unpinned.
	Prompts       []Want
	ListedPrompts []json.RawMessage
}

// Validate checks a request before any upstream is asked.
func (q SelectionRequest) Validate() error {
	for _, w := range q.Tools {
		if err := w.Validate(); err != nil {
			return err
		}
	}
	for _, w := range q.Prompts {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("prompts: %v", err)
		}
		if w.Operation != "" {
			return fmt.Errorf("prompt %q: a prompt has no operation", w.Name)
		}
	}
	return nil
}

// newSelection selects, of the tools and prompts c's upstream lists now,
// those that q wants, pinning each definition. The last entry that
// matches a tool decides its operation. Every entry must match some item.
func newSelection(c *Connector, q SelectionRequest, now time.Time) (*Selection, error) {
	sel := &Selection{Tools: map[string]SelectedTool{}, Updated: now}
	err := pick(c, "tool", q.ListedTools, q.Tools, func(name string, w Want, raw json.RawMessage) error {
		def, err := DefinitionOf(raw)
		if err != nil {
			return err
		}
		op := cmp.Or(w.Operation, c.Tools.Operation(name, ReadOnlyHint(raw)))
		sel.Tools[name] = SelectedTool{Operation: op, Definition: def, Pin: def.Hash()}
		return nil
	})
	if err != nil || q.Prompts == nil {
		return sel, err
	}
	sel.Prompts = map[string]SelectedPrompt{}
	return sel, pick(c, "prompt", q.ListedPrompts, q.Prompts, func(name string, _ Want, raw json.RawMessage) error {
		def, err := PromptDefinitionOf(raw)
		if err != nil {
			return err
		}
		sel.Prompts[name] = SelectedPrompt{Definition: def, Pin: def.Hash()}
		return nil
	})
}

// pick calls take for each listed item (a tool or a prompt, what) that
// an entry of want matches, with the entry. Every entry must match.
func pick(c *Connector, what string, listed []json.RawMessage, want []Want, take func(string, Want, json.RawMessage) error) error {
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
			if err := take(name, w, raw); err != nil {
				return errorf(KindUpstream, "%s %s of %s has a malformed definition: %v", what, name, c.ID, err)
			}
			matched[i] = true
		}
	}
	if i := slices.Index(matched, false); i >= 0 {
		return errorf(KindInvalid, "no %s of %s matches %q", what, c.ID, want[i].Name)
	}
	return nil
}

// clone returns a copy of s that can change without changing s.
func (s *Selection) clone() *Selection {
	out := *s
	out.Tools = maps.Clone(s.Tools)
	out.Prompts = maps.Clone(s.Prompts)
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
	if s.Prompts != nil {
		pp := PromptPolicy{Allow: []string{}, Pins: map[string]string{}}
		for _, name := range slices.Sorted(maps.Keys(s.Prompts)) {
			pp.Allow = append(pp.Allow, name)
			pp.Pins[name] = s.Prompts[name].Pin
		}
		out.Prompts = pp
	}
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

// DriftedPrompts lists the selected prompts whose definition changed
// upstream, in name order.
func (s *Selection) DriftedPrompts() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(s.Prompts)) {
		if s.Prompts[name].Drift != nil {
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
			v.Drift, v.DriftSeen = diffTool(t.Definition, *t.Drift, !strings.HasPrefix(t.Pin, pinVersion)), t.DriftSeen
		}
		out = append(out, v)
	}
	return out
}

// PromptView is one prompt of a selection as an admin sees it.
type PromptView struct {
	Name string `json:"name"`
	Pin  string `json:"pin"`
	// Drift shows what changed upstream, field by field, while the
	// prompt is hidden awaiting approval.
	Drift     map[string]Change `json:"drift,omitempty"`
	DriftSeen time.Time         `json:"drift_seen,omitzero"`
}

// PromptsView shows the selected prompts in name order; nil when the
// selection has no prompt part.
func (s *Selection) PromptsView() []PromptView {
	if s == nil || s.Prompts == nil {
		return nil
	}
	out := []PromptView{}
	for _, name := range slices.Sorted(maps.Keys(s.Prompts)) {
		p := s.Prompts[name]
		v := PromptView{Name: name, Pin: p.Pin}
		if p.Drift != nil {
			v.Drift, v.DriftSeen = diffPrompt(p.Definition, *p.Drift), p.DriftSeen
		}
		out = append(out, v)
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
				dt.Drifted = ToolPolicy{Pins: map[string]string{t.Name: st.Pin}}.Check(t.Name, raw) == PinChanged
			}
		}
		out = append(out, dt)
	}
	return out
}

// DiscoveredPrompt is one prompt as the upstream lists it now, for an
// admin choosing a selection.
type DiscoveredPrompt struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Registered tells whether the selection has it; Drifted whether its
	// definition differs from the approved one.
	Registered bool `json:"registered"`
	Drifted    bool `json:"drifted,omitempty"`
}

// DiscoverPrompts shows the prompts c's upstream lists now against the
// selection s, which may be nil.
func DiscoverPrompts(s *Selection, listed []json.RawMessage) []DiscoveredPrompt {
	out := []DiscoveredPrompt{}
	for _, raw := range listed {
		var p struct {
			Name string `json:"name"`
		}
		def, err := PromptDefinitionOf(raw)
		if json.Unmarshal(raw, &p) != nil || err != nil {
			continue
		}
		dp := DiscoveredPrompt{Name: p.Name, Title: def.Title, Description: def.Description}
		if sp, ok := s.prompt(p.Name); ok {
			dp.Registered, dp.Drifted = true, def.Hash() != sp.Pin
		}
		out = append(out, dp)
	}
	return out
}

// prompt returns the selected prompt name; s may be nil.
func (s *Selection) prompt(name string) (SelectedPrompt, bool) {
	if s == nil {
		return SelectedPrompt{}, false
	}
	p, ok := s.Prompts[name]
	return p, ok
}

// tool returns the selected tool name; s may be nil.
func (s *Selection) tool(name string) (SelectedTool, bool) {
	if s == nil {
		return SelectedTool{}, false
	}
	t, ok := s.Tools[name]
	return t, ok
}
