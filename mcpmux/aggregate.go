package mcpmux

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// uriScheme prefixes a resource URI that more than one connector offers,
// so that the agent can name which one it means: mcpgate://<id>/<uri>.
const uriScheme = "mcpgate://"

// maxPages bounds the cache of rendered list pages.
const maxPages = 4096

// pageKey names one rendered page of an aggregated list. Callers whose
// grants select the same rules see the same items, so the view's key
// stands for them all.
type pageKey struct {
	view, scope string
	kind        *listKind
	offset      int
}

// renderedPage is a list page as sent, with the upstream lists it was
// made from: it is served again only while those are still current.
type renderedPage struct {
	lists  []*list
	result json.RawMessage
}

// aggregate answers a list request from the cached upstream lists of every
// connector in scope the caller may see, keeping only granted items.
func (m *Mux) aggregate(x *exchange, kind *listKind, params []byte) *reply {
	offset, ok := parseCursor(params)
	if !ok {
		return failure(errorf(codeInvalidParams, "the cursor is not one this gateway handed out"))
	}
	conns := m.visible(x.view, x.scope)
	lists := m.gather(x, conns, kind)
	for _, l := range lists {
		if l != nil && (x.listedAt.IsZero() || l.fetched.Before(x.listedAt)) {
			x.listedAt = l.fetched
		}
	}
	key := pageKey{x.view.Key(), x.scope, kind, offset}
	if p, ok := m.pages.Load(key); ok && slices.Equal(p.(*renderedPage).lists, lists) {
		return &reply{result: p.(*renderedPage).result}
	}
	result := m.render(kind, m.entries(x, kind, conns, lists), offset)
	// Only a new key grows the cache; a page rendered again replaces its
	// old self.
	if _, replaced := m.pages.Swap(key, &renderedPage{lists: lists, result: result}); !replaced && m.pageCount.Add(1) > maxPages {
		m.pages.Clear()
		m.pageCount.Store(0)
	}
	return &reply{result: result}
}

// render builds one page of a list result.
func (m *Mux) render(kind *listKind, entries []json.RawMessage, offset int) json.RawMessage {
	end := min(offset+m.pageSize, len(entries))
	offset = min(offset, end)
	size := len(kind.field) + 64
	for _, e := range entries[offset:end] {
		size += len(e) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, `{"`...)
	out = append(out, kind.field...)
	out = append(out, `":[`...)
	for i, e := range entries[offset:end] {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	out = append(out, ']')
	if end < len(entries) {
		out = append(out, `,"nextCursor":`...)
		out = append(out, quote(makeCursor(end))...)
	}
	return append(out, '}')
}

// entries returns the granted items of kind in lists, in connector order,
// named as the endpoint names them.
func (m *Mux) entries(x *exchange, kind *listKind, conns []*connectors.Connector, lists []*list) []json.RawMessage {
	var out []json.RawMessage
	var where []string
	for i, c := range conns {
		if lists[i] == nil {
			continue
		}
		for j := range lists[i].items {
			it := &lists[i].items[j]
			if !x.view.Allows(kind.kind, c.ID, it.name, it.readOnly) {
				continue
			}
			raw := it.raw
			if x.scope == "" {
				raw = it.prefixed
			}
			out = append(out, raw)
			where = append(where, c.ID)
		}
	}
	if kind == resourcesKind || kind == templatesKind {
		disambiguate(out, where, kind.key)
	}
	// The built-in tool lists HTTP API connectors too, so a caller who
	// sees only those still gets it.
	if kind == toolsKind && m.offersBuiltin(x) {
		out = append(out, builtinTool)
	}
	return out
}

// disambiguate rewrites the URIs that more than one connector offers to
// mcpgate://<connector>/<uri>, so that no read can reach the wrong one.
func disambiguate(entries []json.RawMessage, where []string, key string) {
	uris := make([]string, len(entries))
	count := map[string]int{}
	for i, e := range entries {
		uris[i], _ = stringMember(e, key)
		count[uris[i]]++
	}
	for i, e := range entries {
		if count[uris[i]] < 2 {
			continue
		}
		if next, err := setMember(e, key, quote(uriScheme+where[i]+"/"+uris[i])); err == nil {
			entries[i] = next
		}
	}
}

// gather returns kind from every connector: from cache where it is fresh,
// and the rest fetched in parallel, each within its connector's own
// timeout. A failed fetch leaves a nil list: its items are missing and its
// status shows why.
func (m *Mux) gather(x *exchange, conns []*connectors.Connector, kind *listKind) []*list {
	lists := make([]*list, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		if !x.view.HasItems(c.ID) {
			continue
		}
		cred, err := m.credentialFor(x, c)
		if err != nil {
			continue
		}
		e := m.entry(cacheKey{c.ID, cred.Key, kind})
		if l := m.fresh(e); l != nil {
			if l.err == nil {
				lists[i] = l
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l, err := m.refresh(x.ctx, x.caller, c, cred, kind, e); err == nil {
				lists[i] = l
			}
		}()
	}
	wg.Wait()
	return lists
}

// makeCursor encodes a list offset as an opaque cursor.
func makeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("mcpgate:" + strconv.Itoa(offset)))
}

// parseCursor reads the cursor in a list request's params.
func parseCursor(params []byte) (int, bool) {
	if len(params) == 0 {
		return 0, true
	}
	raw := member(params, "cursor")
	if raw == nil || string(raw) == "null" {
		return 0, true
	}
	s, ok := stringMember(params, "cursor")
	if !ok {
		return 0, false
	}
	dec, err := base64.RawURLEncoding.DecodeString(s)
	rest, found := strings.CutPrefix(string(dec), "mcpgate:")
	if err != nil || !found {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}
