package grants

import (
	"strconv"
	"strings"
)

// View is the part of a Policy that applies to one caller. It is immutable,
// so it is safe for concurrent use; a nil View allows nothing.
type View struct {
	rules []*rule // in config order, so the first that allows is the lowest index
	admin bool
	key   string
}

// Decision is the outcome of one check, with the rule that allowed it.
type Decision struct {
	// Allowed reports whether some rule allows the item.
	Allowed bool
	// Rule is the 1-based index of the first rule that allowed the item, or
	// 0 when it is denied.
	Rule int
}

// For returns the view of the rules that apply to c. A caller with an empty
// ID is unidentified and gets a view that allows nothing, even from rules
// for "*" or for one of its groups; so does every caller of a nil Policy.
func (p *Policy) For(c Caller) *View {
	if p == nil || c.ID == "" {
		return &View{}
	}
	// A short key stays on the stack; the view is made once per caller
	// and Policy, not on every request.
	var buf [128]byte
	key := appendCallerKey(buf[:0], c)
	if v := p.views.get(key); v != nil {
		return v
	}
	v := p.view(c)
	p.views.put(key, v)
	return v
}

// view computes the view of the rules that apply to c.
func (p *Policy) view(c Caller) *View {
	v := &View{}
	var key strings.Builder
	for i := range p.rules {
		r := &p.rules[i]
		if !r.appliesTo(c) {
			continue
		}
		if len(v.rules) > 0 {
			key.WriteByte(',')
		}
		key.WriteString(strconv.Itoa(r.index))
		v.rules = append(v.rules, r)
		v.admin = v.admin || r.admin
	}
	v.key = key.String()
	return v
}

// Decide checks one item: a tool, resource, template or prompt of a
// connector. readOnly says whether a tool is known to be read-only; an
// unknown operation must be passed as false. A resource or template name
// that could step out of a wildcard pattern, such as "file:///data/../x",
// is allowed only by a rule that grants it literally or grants the whole
// connector.
func (v *View) Decide(kind Kind, connector, name string, readOnly bool) Decision {
	k, ok := kind.index()
	if !ok {
		return Decision{}
	}
	it := item{kind: k, connector: connector, name: name, readOnly: readOnly}
	if k == resourceSlot || k == templateSlot {
		it.guarded = traversal(name)
	}
	return v.decide(&it)
}

// Allows reports whether the view allows the item; see Decide.
func (v *View) Allows(kind Kind, connector, name string, readOnly bool) bool {
	return v.Decide(kind, connector, name, readOnly).Allowed
}

// AllowsExpansion reports whether the view allows reading uri through the
// connector's URI template tmpl. The template must be allowed, as by
// Allows(Templates, connector, tmpl, false); and uri, which is what the
// upstream resolves, must pass the traversal guard as well. A template is a
// wildcard over URIs, so no template pattern, not even one naming tmpl
// literally, admits "file:///data/.." through "file:///data/{name}": only a
// rule that grants every template of the connector does.
func (v *View) AllowsExpansion(connector, tmpl, uri string) bool {
	it := item{kind: templateSlot, connector: connector, name: tmpl,
		guarded: traversal(tmpl), unsafeURI: traversal(uri)}
	return v.decide(&it).Allowed
}

// decide returns the first applicable rule that allows the item.
func (v *View) decide(it *item) Decision {
	if v == nil || !validConnector(it.connector) {
		return Decision{}
	}
	for _, r := range v.rules {
		if r.allows(it) {
			return Decision{Allowed: true, Rule: r.index}
		}
	}
	return Decision{}
}

// NeedsApproval reports whether a call of the tool, which the view allows
// (Decide), must wait for a person's approval: some applicable rule that
// allows it asks for approval of write tools and the tool is not known to
// be read-only, or names it in an approve glob. Any such rule is enough,
// even when another rule allows the tool without approval: the stricter
// grant holds, so that adding a grant never lifts another's approval.
func (v *View) NeedsApproval(connector, tool string, readOnly bool) bool {
	if v == nil || !validConnector(connector) {
		return false
	}
	it := item{kind: toolSlot, connector: connector, name: tool, readOnly: readOnly}
	for _, r := range v.rules {
		if r.asksApproval(&it) && r.allows(&it) {
			return true
		}
	}
	return false
}

// asksApproval reports whether the rule asks for approval of the tool.
func (r *rule) asksApproval(it *item) bool {
	if r.approveWrites && !it.readOnly {
		return true
	}
	for i := range r.approve {
		if r.approve[i].matches(it.connector, it.name) {
			return true
		}
	}
	return false
}

// Visible reports whether some applicable rule names the connector, in its
// Connectors or as the first segment of an item pattern.
func (v *View) Visible(connector string) bool {
	if v == nil || !validConnector(connector) {
		return false
	}
	for _, r := range v.rules {
		if r.names(connector) {
			return true
		}
	}
	return false
}

// HasItems reports whether some applicable rule could allow at least one
// item of the connector, which tells a "ready" connector from a visible one
// with "no_access".
func (v *View) HasItems(connector string) bool {
	if v == nil || !validConnector(connector) {
		return false
	}
	for _, r := range v.rules {
		if r.hasItems(connector) {
			return true
		}
	}
	return false
}

// Whole reports whether some applicable rule grants the whole connector,
// by listing it in its Connectors, as reaching everything behind the
// connector's credential (its HTTP API) takes; and whether one of those
// rules is not read-only. A grant of some of its items is not enough.
func (v *View) Whole(connector string) (granted, writable bool) {
	if v == nil || !validConnector(connector) {
		return false, false
	}
	for _, r := range v.rules {
		if matchAny(r.connectors, connector) {
			granted = true
			writable = writable || !r.readOnly
		}
	}
	return granted, writable
}

// IsAdmin reports whether some applicable rule has RoleAdmin.
func (v *View) IsAdmin() bool {
	return v != nil && v.admin
}

// Key identifies the set of applicable rules, so that callers can cache
// results per view: views of different callers under the same rules have
// equal keys. Keys compare only within one Policy.
func (v *View) Key() string {
	if v == nil {
		return ""
	}
	return v.key
}

// validConnector reports whether a connector id can stand as the first
// segment of "<connector>/<name>". With a '/' in it, "a/b" + "c" and
// "a" + "b/c" would be the same path, so such an id gets nothing.
func validConnector(c string) bool {
	return c != "" && strings.IndexByte(c, '/') < 0
}

// item is one thing being checked.
type item struct {
	kind      int
	connector string
	name      string
	readOnly  bool
	guarded   bool // the name fails the traversal guard
	unsafeURI bool // the URI read through a template fails it
}

// allows reports whether the rule allows the item.
func (r *rule) allows(it *item) bool {
	if it.kind == toolSlot && r.readOnly && !it.readOnly {
		return false
	}
	if len(r.connectors) > 0 && !matchAny(r.connectors, it.connector) {
		return false
	}
	pats := r.items[it.kind]
	if len(pats) == 0 {
		// Listing connectors without patterns for a kind grants all of that
		// kind in them; there is no narrower scope for a name to escape, so
		// the traversal guard has nothing to protect here.
		return len(r.connectors) > 0
	}
	if it.unsafeURI {
		return false
	}
	for i := range pats {
		if !(pats[i].wild && it.guarded) && pats[i].matches(it.connector, it.name) {
			return true
		}
	}
	return false
}

// names reports whether the rule mentions the connector.
func (r *rule) names(connector string) bool {
	if matchAny(r.connectors, connector) {
		return true
	}
	for _, pats := range r.items {
		for i := range pats {
			if pats[i].headMatches(connector) {
				return true
			}
		}
	}
	return false
}

// hasItems reports whether the rule could allow some item of the connector.
func (r *rule) hasItems(connector string) bool {
	if len(r.connectors) > 0 && !matchAny(r.connectors, connector) {
		return false
	}
	for _, pats := range r.items {
		if len(pats) == 0 && len(r.connectors) > 0 {
			return true
		}
		for i := range pats {
			if pats[i].headMatches(connector) {
				return true
			}
		}
	}
	return false
}

// matchAny reports whether s matches one of the globs.
func matchAny(globs []glob, s string) bool {
	for _, g := range globs {
		if g.match(s) {
			return true
		}
	}
	return false
}
