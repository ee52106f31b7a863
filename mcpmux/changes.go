package mcpmux

import (
	"bytes"
	"context"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// listChange is one upstream list that was fetched again: what it was and
// what it is.
type listChange struct {
	kind     *listKind
	old, cur *list
}

// relist fetches again, as whoever last fetched them, the stale lists of
// kind that credKey sees at connector, and tells the listening agents
// whose view changed. An upstream's list_changed says nothing of what
// changed, and a change to items an agent may not see, or to the lists of
// another user's credential, is none of its business.
func (m *Mux) relist(ctx context.Context, c *connectors.Connector, credKey string, kinds []*listKind) {
	var changes []listChange
	for _, kind := range kinds {
		v, ok := m.cache.Load(cacheKey{c.ID, credKey, kind})
		if !ok {
			continue
		}
		// The gateway has no caller of its own: it fetches as whoever
		// last fetched this entry, whose credential has this key, so the
		// list it gets is the one the entry holds.
		e := v.(*cacheEntry)
		by := e.by.Load()
		if by == nil {
			continue
		}
		old, cur := m.refetch(ctx, by.caller, c, by.cred, kind, e, false)
		if old != nil && old != cur && old.sum != cur.sum {
			changes = append(changes, listChange{kind, old, cur})
		}
	}
	m.announce(ctx, c, credKey, changes)
}

// credentialLookup bounds the wait for a listener's credential, which
// decides whether a change at a connector is one it can see.
const credentialLookup = 5 * time.Second

// announce sends list_changed to every listening agent in whose view at
// connector c one of changes (of lists seen with credential credKey)
// differs: once per notification, however many of its lists changed.
func (m *Mux) announce(ctx context.Context, c *connectors.Connector, credKey string, changes []listChange) {
	if len(changes) == 0 {
		return
	}
	// Collected first, so that the credential lookups below, which may
	// do I/O, run without the listeners' lock.
	var ls []*listener
	m.streams.each(func(l *listener) {
		if l.scope == "" || l.scope == c.ID {
			ls = append(ls, l)
		}
	})
	for _, l := range ls {
		view := m.view(l.caller)
		if !view.Visible(c.ID) || !m.sameCredential(ctx, l.caller, c, credKey) {
			continue
		}
		for _, ch := range changes {
			// Never blocks: one slow agent must not hold up the notices
			// of the rest, nor the background fetch that found the
			// change. Two lists of one notice, or two Muxes that both
			// hear the upstream, make one notice (tell).
			if viewChanged(view, c.ID, ch) {
				l.tell(ch.kind)
			}
		}
	}
}

// notice is the list whose list_changed notification tells of a change to
// kind: resource templates have none of their own.
func (k *listKind) notice() *listKind {
	if k == templatesKind {
		return resourcesKind
	}
	return k
}

// sameCredential reports whether caller reaches connector c with the
// credential whose key is credKey. A listener with another credential
// sees other lists: telling it of this change would tell it that another
// user's view changed, which is that user's business.
func (m *Mux) sameCredential(ctx context.Context, caller grants.Caller, c *connectors.Connector, credKey string) bool {
	ctx, cancel := context.WithTimeout(ctx, credentialLookup)
	defer cancel()
	cred, err := m.credential(ctx, CredentialRequest{Caller: caller, Connector: c})
	return err == nil && cred.Key == credKey
}

// viewChanged reports whether the items of a changed list that view may
// see differ, in content or order, from those it could see before. A
// change to items it may not see sends nothing: the notice would tell
// the agent that something hidden from it exists and changed.
func viewChanged(view *grants.View, connector string, ch listChange) bool {
	a, b := visibleItems(view, connector, ch.kind, ch.old), visibleItems(view, connector, ch.kind, ch.cur)
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return true
		}
	}
	return false
}

// visibleItems are the raw items of l that view may see.
func visibleItems(view *grants.View, connector string, kind *listKind, l *list) [][]byte {
	if l == nil {
		return nil
	}
	var out [][]byte
	for i := range l.items {
		it := &l.items[i]
		if view.Allows(kind.kind, connector, it.name, it.readOnly) {
			out = append(out, it.raw)
		}
	}
	return out
}
