// Package grants decides who may see and use which connector items. Access is
// denied unless a rule allows it.
package grants

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Kind is a kind of catalog item.
type Kind string

// The kinds of catalog item a rule can grant.
const (
	Tools     Kind = "tools"
	Resources Kind = "resources"
	Templates Kind = "templates"
	Prompts   Kind = "prompts"
)

// The slots of a rule's item patterns, one per kind.
const (
	toolSlot = iota
	resourceSlot
	templateSlot
	promptSlot
	kindCount
)

// index returns the kind's slot in a rule's item patterns.
func (k Kind) index() (int, bool) {
	switch k {
	case Tools:
		return toolSlot, true
	case Resources:
		return resourceSlot, true
	case Templates:
		return templateSlot, true
	case Prompts:
		return promptSlot, true
	}
	return 0, false
}

// Role is what a rule makes its callers.
type Role string

// The roles a rule can give.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Rule is one grant, as configured: an access rule. Access is denied
// unless some rule allows it. It is plain data, and the config's JSON.
type Rule struct {
	// Sources are the callers the rule applies to: "user:<id>",
	// "group:<name>", or "*" for every identified caller. Required.
	Sources []string `json:"src"`

	// Role is "user" (default) or "admin".
	Role Role `json:"role,omitempty"`

	// Connectors lists the connector ids the rule covers, or single-segment
	// globs such as "*" or "notion-*". For a kind with no patterns of its
	// own, the rule allows every item of these connectors.
	Connectors []string `json:"connectors,omitempty"`

	// Tools are globs over "<connector>/<tool>": "*" matches within one
	// segment, "**" matches zero or more segments.
	Tools []string `json:"tools,omitempty"`

	// Resources are globs over "<connector>/<uri>".
	Resources []string `json:"resources,omitempty"`

	// Templates are globs over "<connector>/<uri template>".
	Templates []string `json:"templates,omitempty"`

	// Prompts are globs over "<connector>/<prompt>".
	Prompts []string `json:"prompts,omitempty"`

	// Operations is "read" to allow only read-only tools, or empty for all.
	Operations string `json:"operations,omitempty"`

	// Approve lists the tools whose calls under this rule wait for a
	// person's approval: "write" for every tool the rule allows that is
	// not read-only, and globs over "<connector>/<tool>" for others.
	// Default: none.
	Approve []string `json:"approve,omitempty"`
}

// ApproveWrites is the entry of Rule.Approve that asks for approval of
// every write tool the rule allows.
const ApproveWrites = "write"

// ReadOnly is the value of Operations that limits a rule's tools to
// read-only ones.
const ReadOnly = "read"

// Caller is who is asking.
type Caller struct {
	// ID is the caller's identity; empty means unidentified.
	ID string
	// Groups are the groups the caller belongs to.
	Groups []string
}

// Policy is a compiled set of rules. It is immutable, so it is safe for
// concurrent use; a nil Policy has no rules and allows nothing.
type Policy struct {
	rules []rule
	// views holds the views For made, which every request asks for.
	views viewCache
	// generation identifies the rules (Generation).
	generation string
}

// rule is one compiled Rule.
type rule struct {
	index      int // 1-based position in the config
	anyone     bool
	users      []string
	groups     []string
	admin      bool
	connNames  []string
	connectors []glob
	items      [kindCount][]pattern
	readOnly   bool
	// approveWrites and approve are Rule.Approve compiled.
	approveWrites bool
	approve       []pattern
}

// New compiles rules into a Policy, validating every value. Errors name the
// rule by its 1-based index and quote the bad value.
func New(rules []Rule) (*Policy, error) {
	p := &Policy{rules: make([]rule, 0, len(rules))}
	for i, r := range rules {
		cr, err := compileRule(fmt.Sprintf("grant %d", i+1), i+1, r)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, cr)
	}
	raw, err := json.Marshal(rules)
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	sum := sha256.Sum256(raw)
	p.generation = hex.EncodeToString(sum[:16])
	return p, nil
}

// Generation identifies the policy by its rules: two policies of the same
// rules, on one instance or several, have the same generation, and a
// change of any rule makes another. An approval is bound to it, so that
// one given under some grants is not used under others.
func (p *Policy) Generation() string {
	if p == nil {
		return ""
	}
	return p.generation
}

// Sources is a compiled list of rule sources ("*", "user:<id>",
// "group:<name>"), such as the approvers the config names.
type Sources struct {
	r rule
}

// CompileSources validates and compiles srcs.
func CompileSources(srcs []string) (*Sources, error) {
	s := new(Sources)
	if err := s.r.addSources(srcs); err != nil {
		return nil, err
	}
	return s, nil
}

// Match reports whether c, an identified caller, is one of the sources.
func (s *Sources) Match(c Caller) bool {
	return s != nil && c.ID != "" && s.r.appliesTo(c)
}

// Validate checks r as New checks each rule, with errors that name no
// index: for a rule that stands alone, such as a grant an admin adds at
// run time.
func (r Rule) Validate() error {
	_, err := compileRule("grant", 0, r)
	return err
}

// compileRule validates and compiles the rule at 1-based index n, which
// its errors call name.
func compileRule(name string, n int, r Rule) (rule, error) {
	cr := rule{index: n, readOnly: r.Operations == ReadOnly}
	if r.Operations != "" {
		if err := ValidateOperations(r.Operations); err != nil {
			return cr, fmt.Errorf("%s: %w", name, err)
		}
	}
	role, err := ParseRole(string(r.Role))
	if err != nil {
		return cr, fmt.Errorf("%s: %w", name, err)
	}
	cr.admin = role == RoleAdmin
	if len(r.Sources) == 0 {
		return cr, fmt.Errorf("%s names no sources", name)
	}
	if err := cr.add(r); err != nil {
		return cr, fmt.Errorf("%s: %w", name, err)
	}
	if len(cr.connectors) == 0 && !cr.hasPatterns() {
		return cr, fmt.Errorf("%s names no connectors and no items", name)
	}
	return cr, nil
}

// add validates and compiles the rule's sources, connectors and items.
func (r *rule) add(rl Rule) error {
	if err := r.addSources(rl.Sources); err != nil {
		return err
	}
	if err := r.addConnectors(rl.Connectors); err != nil {
		return err
	}
	if err := r.addApprove(rl.Approve); err != nil {
		return err
	}
	return r.addItems(rl)
}

// addApprove validates and compiles the rule's approve entries.
func (r *rule) addApprove(entries []string) error {
	for _, e := range entries {
		if e == ApproveWrites {
			r.approveWrites = true
			continue
		}
		if err := ValidatePattern(e); err != nil {
			return fmt.Errorf("approve: %w (or write, for every write tool)", err)
		}
		r.approve = append(r.approve, compilePattern(e))
	}
	return nil
}

// addSources validates the sources and sorts them by kind.
func (r *rule) addSources(sources []string) error {
	for _, s := range sources {
		if err := ValidateSource(s); err != nil {
			return err
		}
		switch kind, value, _ := strings.Cut(s, ":"); kind {
		case "*":
			r.anyone = true
		case "user":
			r.users = append(r.users, value)
		case "group":
			r.groups = append(r.groups, value)
		}
	}
	return nil
}

// addConnectors validates and compiles the connector globs.
func (r *rule) addConnectors(connectors []string) error {
	for _, c := range connectors {
		if err := ValidateConnectorPattern(c); err != nil {
			return err
		}
		r.connNames = append(r.connNames, c)
		r.connectors = append(r.connectors, compileGlob(c))
	}
	return nil
}

// addItems validates and compiles the item patterns of every kind.
func (r *rule) addItems(rl Rule) error {
	lists := [kindCount][]string{
		toolSlot: rl.Tools, resourceSlot: rl.Resources, templateSlot: rl.Templates, promptSlot: rl.Prompts,
	}
	kinds := [kindCount]Kind{toolSlot: Tools, resourceSlot: Resources, templateSlot: Templates, promptSlot: Prompts}
	for k, list := range lists {
		for _, src := range list {
			if err := ValidatePattern(src); err != nil {
				return fmt.Errorf("%s: %w", kinds[k], err)
			}
			r.items[k] = append(r.items[k], compilePattern(src))
		}
	}
	return nil
}

// hasPatterns reports whether the rule has an item pattern of any kind.
func (r *rule) hasPatterns() bool {
	for _, pats := range r.items {
		if len(pats) > 0 {
			return true
		}
	}
	return false
}

// appliesTo reports whether the rule is for the caller, whose ID is not
// empty. Identities and groups live in separate lists, so an identity string
// never matches a group source or the other way round.
func (r *rule) appliesTo(c Caller) bool {
	if r.anyone || slices.Contains(r.users, c.ID) {
		return true
	}
	for _, g := range c.Groups {
		if slices.Contains(r.groups, g) {
			return true
		}
	}
	return false
}

// Connectors returns every connector id or glob the rules name, in
// Connectors or as the first segment of an item pattern, sorted and without
// duplicates. A leading "**" names no connector and is left out.
func (p *Policy) Connectors() []string {
	if p == nil {
		return nil
	}
	var names []string
	for i := range p.rules {
		names = p.rules[i].appendConnectorNames(names)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// appendConnectorNames appends the connector names the rule mentions.
func (r *rule) appendConnectorNames(names []string) []string {
	names = append(names, r.connNames...)
	for _, pats := range r.items {
		for _, pt := range pats {
			if h := pt.head(); h != "**" {
				names = append(names, h)
			}
		}
	}
	return names
}

// UnknownConnectors returns the names from Connectors that match none of
// ids, sorted: a literal id that is not in ids, or a glob that matches none
// of them. It serves provision-time warnings about rules that can never
// apply.
func (p *Policy) UnknownConnectors(ids []string) []string {
	var unknown []string
	for _, name := range p.Connectors() {
		g := compileGlob(name)
		if !slices.ContainsFunc(ids, g.match) {
			unknown = append(unknown, name)
		}
	}
	return unknown
}
