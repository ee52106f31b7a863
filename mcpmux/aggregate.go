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

// maxPages bounds the cache of rendered list pages. Past it the cache is
// cleared whole rather than trimmed: a page is cheap to render again, and
// this keeps the hot path free of any eviction bookkeeping.
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
// Comparing the lists also keeps callers apart whose rules are the same
// but whose credentials differ: each credential has lists of its own, so
// one user's page never matches another's.
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
	// The answer is as old as its oldest list, which its ttlMs reflects.
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

// render builds one page of a list result, in one allocation.
func (m *Mux) render(kind *listKind, entries []json.RawMessage, offset int) json.RawMessage {
	// A cursor past the end (the list shrank since it was handed out)
	// gives an empty page, not an error.
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
			// The upstream's bytes as they came, but for the name on the
			// aggregated endpoint (fidelity: every field the upstream sent).
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
		// A connector the caller may see but use nothing of costs no
		// upstream request.
		if !x.view.HasItems(c.ID) {
			continue
		}
		// Asked here, before any goroutine starts: x.creds is the
		// request's own and has no lock.
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
		// Each goroutine writes only its own element of lists, and Wait
		// orders those writes before the reads below.
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

// makeCursor encodes a list offset as an opaque cursor (Pagination:
// clients must treat cursors as opaque). An offset is enough, since the
// order of entries is stable, and safe to hand out: an agent that forges
// one can page only through what its own grants let it list.
func makeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("mcpgate:" + strconv.Itoa(offset)))
}

// parseCursor reads the cursor in a list request's params. A cursor the
// gateway did not make is refused, which Pagination, "Error Handling",
// answers with -32602; null counts as none, as some clients send it.
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
