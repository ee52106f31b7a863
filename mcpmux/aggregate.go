package mcpmux

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// uriScheme prefixes a resource URI that more than one connector offers,
// so that the agent can name which one it means: mcpgate://<id>/<uri>.
const uriScheme = "mcpgate://"

// The ready answers are bounded in count and in bytes. Past either bound
// the cache is cleared whole rather than trimmed: an answer is cheap to
// build again from the cached upstream lists, and this keeps the hot path
// free of any eviction bookkeeping. The bytes bound the first pages held
// (the entries they were made of are the upstream lists' own bytes,
// shared, and the copy shaped for 2026-07-28 agents at most doubles
// them); an answer larger than the bound alone is served but not kept.
const (
	maxAnswers     = 4096
	maxAnswerBytes = 32 << 20
)

// answerKey names a ready answer: one list of one view, at one endpoint,
// as the caller's credentials see it. Callers whose grants select the same
// rules see the same items, so the view's key stands for them all; creds
// hashes the credential keys the lists were fetched with (0 when the
// credentials are static, the same for every caller), so that callers
// whose rules are the same but whose credentials differ have answers of
// their own. The hash only finds the answer: readyList.creds is compared
// too, so that a collision can never serve one caller another's lists.
type answerKey struct {
	view, scope string
	kind        *listKind
	creds       uint64
}

// readyList is a view's whole list, ready to send: the first page encoded as
// its result, rebuilt only when something it was made from changes. It is
// never changed once stored, but for shaped, which only caches.
type readyList struct {
	// version is Mux.listVersion when its lists were gathered: any list
	// fetched, marked stale or replaced since, or a consent given or
	// withdrawn, bumps the version and retires the answer.
	version uint64
	// expires is when the first of its lists outlives its TTL (errorTTL
	// for a connector whose list failed), and listedAt when the oldest
	// was fetched, for ttlMs.
	expires, listedAt time.Time
	// creds are the credential keys at each connector the view can use,
	// in order, "" where the caller has none; nil with static ones.
	creds []string
	// entries are the items of every page, for a cursor past the first.
	entries []json.RawMessage
	// first is the first page's result, as a legacy agent gets it.
	first json.RawMessage
	// shaped is the first page as a 2026-07-28 agent gets it, with
	// ttlMs in whole seconds: it is made again when the second changes.
	shaped atomic.Pointer[shapedPage]
	// always are the indices in entries of the tools that search mode
	// lists too, and search is the answer in search mode, made when
	// first asked for (search.go).
	always []int
	search atomic.Pointer[readyList]
}

// shapedPage is a first page with the 2026-07-28 members, for ttl.
type shapedPage struct {
	ttl    time.Duration
	result json.RawMessage
}

// listMethods are the list methods, by name.
var listMethods = map[string]*listKind{}

func init() {
	for _, kind := range listKinds {
		listMethods[kind.method] = kind
	}
}

// aggregate answers a list request from the cached upstream lists of every
// connector in scope the caller may see, keeping only granted items: from
// the view's ready answer when nothing it was made from has changed.
func (m *Mux) aggregate(x *exchange, kind *listKind, params []byte) *reply {
	offset, ok := parseCursor(params)
	if !ok {
		return failure(errorf(codeInvalidParams, "the cursor is not one this gateway handed out"))
	}
	a := m.listed(x, kind)
	// The answer is as old as its oldest list, which its ttlMs reflects.
	x.listedAt = a.listedAt
	if offset == 0 {
		return &reply{result: a.first}
	}
	return &reply{result: m.render(kind, a.entries, offset)}
}

// serveList answers a list request, shaped for the agent's era, with no
// other work than finding the answer: a list is the gateway's own, never
// input-required, so nothing else need read the result. A 2026-07-28
// agent's first page comes shaped from the answer, its ttlMs rounded down
// to the second (a hint that errs short), so that it is made once a second
// rather than copied for every request.
func (m *Mux) serveList(x *exchange, kind *listKind) *reply {
	if !x.modern {
		return m.aggregate(x, kind, x.params)
	}
	if offset, ok := parseCursor(x.params); !ok || offset != 0 {
		return m.shapeResult(x, m.aggregate(x, kind, x.params))
	}
	a := m.listed(x, kind)
	x.listedAt = a.listedAt
	ttl := m.listTTLLeft(x).Truncate(time.Second)
	if p := a.shaped.Load(); p != nil && p.ttl == ttl {
		return &reply{result: p.result}
	}
	p := &shapedPage{ttl: ttl, result: shapeList(a.first, ttl)}
	a.shaped.Store(p)
	return &reply{result: p.result}
}

// shapeList returns a copy of a list page's result with the members that
// shapeResult gives a 2026-07-28 agent's list, in its order: a page the
// gateway rendered has none of them yet.
func shapeList(page []byte, ttl time.Duration) json.RawMessage {
	out := make([]byte, 0, len(page)+80)
	out = append(out, page[:len(page)-1]...)
	out = append(out, `,"resultType":`...)
	out = append(out, resultComplete...)
	out = append(out, `,"ttlMs":`...)
	out = strconv.AppendInt(out, ttl.Milliseconds(), 10)
	out = append(out, `,"cacheScope":`...)
	out = append(out, scopePrivate...)
	return append(out, '}')
}

// ready returns the view's ready answer for kind, building it when there
// is none or it is no longer current. What a hit costs does not grow with
// the list: the credential source asked once per connector (none with
// static credentials), one map lookup and two comparisons.
func (m *Mux) ready(x *exchange, kind *listKind) *readyList {
	// Read before the lists are: a change while they are gathered
	// retires the answer they make.
	version := m.listVersion.Load()
	creds := m.askCredentials(x)
	key := answerKey{x.view.Key(), x.scope, kind, hashKeys(creds)}
	if v, ok := m.answers.Load(key); ok {
		if a := v.(*readyList); a.version == version && m.now().Before(a.expires) && slices.Equal(a.creds, creds) {
			return a
		}
	}
	a, keep := m.build(x, kind, version)
	if keep {
		key.creds = hashKeys(a.creds)
		m.keep(key, a)
	}
	return a
}

// build gathers the lists of kind and makes the view's answer of them. It
// reports whether the answer may be kept: not when a list is missing for
// want of a fetch (this request went away while it ran), which the next
// request must wait for instead of being answered without it.
func (m *Mux) build(x *exchange, kind *listKind, version uint64) (*readyList, bool) {
	conns := m.visible(x.view, x.scope)
	lists := m.gather(x, conns, kind)
	a := &readyList{version: version, expires: m.now().Add(m.ttl)}
	keep := true
	for i, c := range conns {
		l := lists[i]
		if l == nil {
			l, keep = m.failedList(x, c, kind, keep)
		}
		if l == nil {
			continue
		}
		ttl := m.ttl
		if l.err != nil {
			ttl = min(ttl, errorTTL)
		} else if a.listedAt.IsZero() || l.fetched.Before(a.listedAt) {
			a.listedAt = l.fetched
		}
		a.expires = earliest(a.expires, l.fetched.Add(ttl))
	}
	// The credentials the lists were fetched with, which gather may have
	// asked for again: the answer is filed under those.
	if !m.staticCreds {
		a.creds = m.usedCredentials(x)
	}
	a.entries, a.always = m.entries(x, kind, conns, lists)
	a.first = m.render(kind, a.entries, 0)
	return a, keep
}

// failedList returns why gather has no list of connector c: nil when the
// view uses nothing of c or the caller has no credential there (asked
// again on every request), else the failure cached for it, which the
// answer may be kept as long as. With none, the fetch did not end (this
// request went away, or the Mux is closing) and keep turns false.
func (m *Mux) failedList(x *exchange, c *connectors.Connector, kind *listKind, keep bool) (*list, bool) {
	if !x.view.HasItems(c.ID) {
		return nil, keep
	}
	for _, used := range x.creds {
		if used.connector == c.ID {
			if l := m.fresh(m.entry(cacheKey{c.ID, used.Key, kind})); l != nil && l.err != nil {
				return l, keep
			}
			return nil, false
		}
	}
	return nil, keep
}

// keep stores a under key, within the cache's bounds.
func (m *Mux) keep(key answerKey, a *readyList) {
	size := int64(len(a.first))
	if size > maxAnswerBytes {
		return
	}
	old, replaced := m.answers.Swap(key, a)
	if replaced {
		size -= int64(len(old.(*readyList).first))
	}
	bytes := m.answerBytes.Add(size)
	if !replaced && m.answerCount.Add(1) > maxAnswers || bytes > maxAnswerBytes {
		m.answers.Clear()
		m.answerCount.Store(0)
		m.answerBytes.Store(0)
	}
}

// askCredentials asks the credential source for the caller's credential
// at each connector of the view that the caller may use something of, as
// gather would, and returns their keys in order ("" where it has none);
// nil when the credentials are static. Asked on every request, since only
// the source knows whether a token expired or a consent changed.
func (m *Mux) askCredentials(x *exchange) []string {
	if m.staticCreds {
		return nil
	}
	var keys []string
	for _, c := range m.visible(x.view, x.scope) {
		if !x.view.HasItems(c.ID) {
			continue
		}
		key := ""
		if cred, err := m.credentialFor(x, c); err == nil {
			key = cred.Key
		}
		keys = append(keys, key)
	}
	return keys
}

// usedCredentials returns the keys of the credentials this request used at
// each connector of the view the caller may use something of, in order,
// "" where it used none.
func (m *Mux) usedCredentials(x *exchange) []string {
	var keys []string
	for _, c := range m.visible(x.view, x.scope) {
		if !x.view.HasItems(c.ID) {
			continue
		}
		key := ""
		for _, used := range x.creds {
			if used.connector == c.ID {
				key = used.Key
				break
			}
		}
		keys = append(keys, key)
	}
	return keys
}

// hashKeys hashes credential keys (FNV-1a, each key ended by a zero byte,
// which no key holds), so that an answer is found by one lookup.
func hashKeys(keys []string) uint64 {
	if keys == nil {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, k := range keys {
		for i := range len(k) {
			h = (h ^ uint64(k[i])) * 1099511628211
		}
		h *= 1099511628211
	}
	return h
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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
// named as the endpoint names them, and the indices of the tools that
// search mode lists too.
func (m *Mux) entries(x *exchange, kind *listKind, conns []*connectors.Connector, lists []*list) ([]json.RawMessage, []int) {
	var out []json.RawMessage
	var always []int
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
			if kind == toolsKind && m.alwaysListed(c.ID, it) {
				always = append(always, len(out)-1)
			}
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
	return out, always
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
