package mcpmux

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// uriScheme prefixes a resource URI that more than one connector offers,
// so that the agent can name which one it means: mcpgate://<id>/<uri>.
const uriScheme = "mcpgate://"

// aggregate answers a list request from the cached upstream lists of every
// connector in scope the caller may see, keeping only granted items.
func (m *Mux) aggregate(x *exchange, kind *listKind, params []byte) *reply {
	offset, ok := parseCursor(params)
	if !ok {
		return failure(errorf(codeInvalidParams, "the cursor is not one this gateway handed out"))
	}
	entries := m.entries(x, kind)
	end := min(offset+m.pageSize, len(entries))
	offset = min(offset, end)
	out := make([]byte, 0, 1024)
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
	return &reply{result: append(out, '}')}
}

// entries returns the granted items of kind that the caller sees, in
// connector order, named as the endpoint names them.
func (m *Mux) entries(x *exchange, kind *listKind) []json.RawMessage {
	conns := m.visible(x.view, x.scope)
	lists := m.gather(x, conns, kind)
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
	if kind == toolsKind && x.scope == "" && len(conns) > 0 {
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

// gather fetches kind from every connector in parallel. Each fetch runs
// within its connector's own timeout, and a failed one leaves a nil list:
// its items are missing and its status shows why.
func (m *Mux) gather(x *exchange, conns []*connectors.Connector, kind *listKind) []*list {
	lists := make([]*list, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		if !x.view.HasItems(c.ID) {
			continue
		}
		fetch := func() {
			if l, err := m.list(x.ctx, x.caller, c, kind); err == nil {
				lists[i] = l
			}
		}
		if len(conns) == 1 {
			fetch()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fetch()
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
