package mcpmux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// maxListPages bounds how many pages of one list the gateway follows, so
// that an upstream handing out cursors forever cannot hold it.
const maxListPages = 100

// errorTTL is how long a failed list fetch is remembered, so that a dead
// upstream costs each agent request nothing rather than a fresh attempt.
const errorTTL = 5 * time.Second

// listKind describes one of the four catalog lists.
type listKind struct {
	kind       grants.Kind
	method     string // the list method
	field      string // the array in its result
	key        string // the member naming an item
	capability string // the server capability that offers it
	changed    string // the notification that invalidates it
}

var (
	toolsKind     = &listKind{grants.Tools, "tools/list", "tools", "name", "tools", "notifications/tools/list_changed"}
	resourcesKind = &listKind{grants.Resources, "resources/list", "resources", "uri", "resources", "notifications/resources/list_changed"}
	templatesKind = &listKind{grants.Templates, "resources/templates/list", "resourceTemplates", "uriTemplate", "resources", "notifications/resources/list_changed"}
	promptsKind   = &listKind{grants.Prompts, "prompts/list", "prompts", "name", "prompts", "notifications/prompts/list_changed"}
	listKinds     = []*listKind{toolsKind, resourcesKind, templatesKind, promptsKind}
)

// item is one tool, resource, template or prompt as its upstream sent it.
type item struct {
	name     string          // upstream name, uri or uriTemplate
	raw      json.RawMessage // the upstream's definition, untouched
	wire     string          // the name an agent sees on the aggregated endpoint
	prefixed json.RawMessage // raw with its name replaced by wire
	readOnly bool            // tools: the operation is read
	tool     *mcp.Tool       // tools with x-mcp-header bindings, else nil
}

// list is one upstream list, fetched whole. It is never changed once
// stored: readers share it without a lock, and a fetch makes a new one.
type list struct {
	items []item
	// byName and byWire index items by the upstream's name and by the
	// aggregated endpoint's: a call is routed by the index, never by
	// scanning, whatever the catalog's size.
	byName  map[string]int
	byWire  map[string]int
	fetched time.Time
	// err is a failed fetch, cached like a list (for errorTTL at most).
	err error
	// sum hashes the items kept, so that a fetch can tell whether the
	// list changed, and list_changed go out only when it did.
	sum [32]byte
}

// cacheKey names one list of one upstream connection. It holds the
// credential's key, as upstreamKey does: what an upstream lists may
// depend on whose token asks, and one user's list must never answer
// another's request.
type cacheKey struct {
	connector, credential string
	kind                  *listKind
}

// cacheEntry holds a list and makes concurrent fetches of it one.
type cacheEntry struct {
	// mu guards flight, the fetch under way if any, so that agents who
	// find the list stale at once wait for one fetch rather than each
	// send their own. cur and stale are atomic so that a fresh list is
	// served, and a list marked stale, without that lock: a notification
	// must not wait for a fetch.
	mu     sync.Mutex
	flight *flight
	cur    atomic.Pointer[list]
	stale  atomic.Bool
	// by is who last fetched the list, so that the gateway can fetch it
	// again on its own when the upstream says it changed.
	by atomic.Pointer[fetcher]
}

// flight is one fetch of a list under way, which every agent that finds
// the list stale meanwhile waits for.
type flight struct {
	done chan struct{} // closed once old and cur are set
	// old is the list the fetch replaced (nil if none, or if the fetch
	// was cancelled and replaced nothing) and cur the one it fetched.
	old, cur *list
	// announce: the fetch itself tells listening agents when the list
	// changed, so that they are told even if the agent whose request
	// started it has gone.
	announce bool
}

// fetcher is a caller and credential that a list can be fetched as.
type fetcher struct {
	caller grants.Caller
	cred   Credential
}

// usable reports whether l can be served at now.
func (l *list) usable(now time.Time, ttl time.Duration, stale bool) bool {
	if l == nil || stale {
		return false
	}
	if l.err != nil {
		ttl = min(ttl, errorTTL)
	}
	return now.Sub(l.fetched) < ttl
}

// list returns connector's list of kind as cred sees it, from cache when
// it is fresh. The fresh case takes no lock: it is every call's path.
func (m *Mux) list(ctx context.Context, caller grants.Caller, c *connectors.Connector, cred Credential, kind *listKind) (*list, error) {
	e := m.entry(cacheKey{c.ID, cred.Key, kind})
	if l := m.fresh(e); l != nil {
		return l, l.err
	}
	return m.refresh(ctx, caller, c, cred, kind, e)
}

// fresh returns e's list when it can be served now, else nil.
func (m *Mux) fresh(e *cacheEntry) *list {
	if l := e.cur.Load(); l.usable(m.now(), m.ttl, e.stale.Load()) {
		return l
	}
	return nil
}

// refresh fetches e's list from the upstream, once however many ask at the
// same time, and has the fetch tell listening agents when it has changed.
func (m *Mux) refresh(ctx context.Context, caller grants.Caller, c *connectors.Connector, cred Credential, kind *listKind, e *cacheEntry) (*list, error) {
	_, l := m.refetch(ctx, caller, c, cred, kind, e, true)
	return l, l.err
}

// refetch fetches e's list unless it is fresh, and returns the list it
// replaced (nil if none) and the current one. The fetch is shared and
// runs apart from ctx: ctx ends only this caller's wait, so that one agent
// going away never fails the fetch for the others waiting on it. With
// announce the fetch tells listening agents of a change itself.
func (m *Mux) refetch(ctx context.Context, caller grants.Caller, c *connectors.Connector, cred Credential, kind *listKind, e *cacheEntry, announce bool) (old, cur *list) {
	for {
		l, f, own := m.takeoff(ctx, caller, c, cred, kind, e, announce)
		if l != nil {
			return l, l
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, &list{fetched: m.now(), err: fmt.Errorf("listing %s at %s: %w", kind.field, c.ID, ctx.Err())}
		}
		if own {
			return f.old, f.cur
		}
		// Someone else's fetch, which may have begun before a list_changed
		// that came while it ran: looked at again, as the list it got may
		// be stale already.
	}
}

// takeoff returns e's list when it is fresh, or else the fetch of it under
// way, starting one (own) if there is none. A list it cannot fetch, since
// the Mux is closing, comes back as a failed list that is not cached.
func (m *Mux) takeoff(ctx context.Context, caller grants.Caller, c *connectors.Connector, cred Credential, kind *listKind, e *cacheEntry, announce bool) (l *list, f *flight, own bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Checked again under the lock: a fetch may have just landed.
	if l := m.fresh(e); l != nil {
		return l, nil, false
	}
	if e.flight != nil {
		return nil, e.flight, false
	}
	f = &flight{done: make(chan struct{}), announce: announce}
	// Cleared before the fetch, not after: a list_changed that arrives
	// while the upstream answers marks the new list stale, rather than
	// being lost.
	stale := e.stale.Swap(false)
	// A background goroutine, so that Close ends the fetch and waits for
	// it; it cannot land before e.flight is set, since landing takes mu.
	if !m.background(func(life context.Context) { m.fly(life, ctx, caller, c, cred, kind, e, f) }) {
		if stale {
			e.stale.Store(true)
		}
		return &list{fetched: m.now(), err: errors.New("the gateway is shutting down")}, nil, false
	}
	e.flight = f
	e.by.Store(&fetcher{caller, cred})
	return nil, f, true
}

// fly runs flight f. Its context keeps the values of the request that
// started it but not its end, is bounded by the connector's timeout (how
// long a hung upstream can hold the agents waiting) and ends with the Mux
// (life).
func (m *Mux) fly(life, ctx context.Context, caller grants.Caller, c *connectors.Connector, cred Credential, kind *listKind, e *cacheEntry, f *flight) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(life, cancel)()
	fetchCtx, stop := context.WithTimeout(ctx, c.RequestTimeout())
	l := m.fetch(fetchCtx, caller, c, cred, kind)
	stop()
	m.land(e, f, l)
	// Before the waiting agents go on, so that a search after the list
	// searches it.
	m.indexLanded(cacheKey{c.ID, cred.Key, kind}, e)
	close(f.done)
	// A first fetch changes nothing an agent has seen.
	if f.announce && f.old != nil && f.old.sum != l.sum {
		m.announce(ctx, c, cred.Key, []listChange{{kind, f.old, l}})
	}
}

// land stores the list flight f fetched in e, and ends the flight.
func (m *Mux) land(e *cacheEntry, f *flight, l *list) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// After the change below, which the deferred unlock orders first:
	// every ready answer made before it is retired.
	defer m.listVersion.Add(1)
	e.flight, f.cur = nil, l
	// A cancelled fetch (the Mux is closing) says nothing of the
	// upstream: it is not cached as the upstream's failure, and the list
	// it would have replaced is fetched again when next asked for.
	if errors.Is(l.err, context.Canceled) {
		e.stale.Store(true)
		return
	}
	f.old = e.cur.Swap(l)
}

// entry returns the cache entry for key, creating it.
func (m *Mux) entry(key cacheKey) *cacheEntry {
	// Load first, so that the hot path allocates no entry to throw away.
	if e, ok := m.cache.Load(key); ok {
		return e.(*cacheEntry)
	}
	e, _ := m.cache.LoadOrStore(key, new(cacheEntry))
	return e.(*cacheEntry)
}

// invalidate marks every cached list of connector stale: of kind, or of
// every kind for nil. It ranges over the whole cache, which is fine for
// what calls it (a notification, a failed call), never a request's path.
// Every credential's lists go: a list_changed names no credential.
func (m *Mux) invalidate(connector string, kind *listKind) {
	m.cache.Range(func(k, v any) bool {
		if key := k.(cacheKey); key.connector == connector && (kind == nil || key.kind == kind) {
			v.(*cacheEntry).stale.Store(true)
		}
		return true
	})
	// After the marks: an answer made before them is retired, and one
	// made since sees them.
	m.listVersion.Add(1)
}

// lost marks connector's lists stale after a call to it failed, so that
// the next list asks the upstream again: a dead upstream's items go
// missing rather than linger until the TTL.
func (m *Mux) lost(connector string) {
	m.invalidate(connector, nil)
}

// fetch gathers a whole list from the upstream, following cursors.
func (m *Mux) fetch(ctx context.Context, caller grants.Caller, c *connectors.Connector, cred Credential, kind *listKind) *list {
	l := &list{fetched: m.now(), byName: map[string]int{}, byWire: map[string]int{}}
	// Connect first, for the capabilities: a list the upstream does not
	// offer is empty, not an error (asking would get -32601).
	_, st, err := m.do(ctx, caller, c, &cred, eraAny, nil)
	if err != nil {
		l.err = err
		return l
	}
	if member(st.caps, kind.capability) == nil {
		return l
	}
	h := sha256.New()
	var cursor string
	for page := 0; page < maxListPages; page++ {
		params := []byte(`{}`)
		if cursor != "" {
			params = []byte(`{"cursor":` + string(quote(cursor)) + `}`)
		}
		rep, _, err := m.do(ctx, caller, c, &cred, eraAny, &rpc{method: kind.method, params: params})
		if err == nil && rep.err != nil {
			err = fmt.Errorf("%s failed: %s", kind.method, errorMessage(rep.err))
		}
		if err == nil {
			cursor, err = m.addPage(l, c, kind, rep.result, h)
		}
		if err != nil {
			l.err = err
			return l
		}
		if cursor == "" {
			break
		}
	}
	h.Sum(l.sum[:0])
	return l
}

// addPage adds one page of a list result to l and returns its next cursor.
func (m *Mux) addPage(l *list, c *connectors.Connector, kind *listKind, result []byte, h interface{ Write([]byte) (int, error) }) (string, error) {
	next, _ := stringMember(result, "nextCursor")
	arr := member(result, kind.field)
	var raws []json.RawMessage
	if len(arr) > 0 {
		if err := json.Unmarshal(arr, &raws); err != nil {
			return "", fmt.Errorf("%s: %s is not an array", kind.method, kind.field)
		}
	}
	for _, raw := range raws {
		it, err := m.newItem(c, kind, raw)
		if err != nil {
			return "", fmt.Errorf("%s: %v", kind.method, err)
		}
		if it == nil {
			continue
		}
		// A name listed twice keeps its first definition: one name must
		// route to one item, and the item routed to is the one listed.
		if _, dup := l.byName[it.name]; dup {
			continue
		}
		l.byName[it.name] = len(l.items)
		l.byWire[it.wire] = len(l.items)
		l.items = append(l.items, *it)
		h.Write(raw)
	}
	return next, nil
}

// newItem reads one list entry. It returns nil for a tool the connector's
// config leaves out of the catalog.
func (m *Mux) newItem(c *connectors.Connector, kind *listKind, raw json.RawMessage) (*item, error) {
	name, ok := stringMember(raw, kind.key)
	if !ok || name == "" {
		return nil, fmt.Errorf("an entry has no %s", kind.key)
	}
	it := &item{name: name, raw: raw, wire: name, prefixed: raw}
	if kind == toolsKind {
		// The connector's tool selection comes before any grant: a tool
		// left out of it is absent for everyone, as if never listed.
		if !c.Tools.Allows(name) {
			return nil, nil
		}
		// A pinned tool whose definition changed (new description, new
		// parameters, a flipped readOnlyHint, a new title) is held back
		// until an admin approves it again: an upstream must not change
		// what a granted tool does unseen. A pin an older version made
		// that still matches is served, and re-pinned to the current
		// scope by whoever OnDrift tells.
		if m.pinCheck(connectors.ToolPin, c.ID, name, raw, c.Tools.Check(name, raw)) {
			return nil, nil
		}
		// The admin's operation fact beats the upstream's readOnlyHint,
		// which is only a hint from a party the grants do not trust.
		it.readOnly = c.Tools.Operation(name, connectors.ReadOnlyHint(raw)) == connectors.Read
		it.tool = headerBoundTool(raw)
	}
	// A prompt is selected and pinned as a tool is: its description
	// and arguments are what a user picks it by.
	if kind == promptsKind && (!c.Prompts.Allows(name) || m.pinCheck(connectors.PromptPin, c.ID, name, raw, c.Prompts.Check(name, raw))) {
		return nil, nil
	}
	if kind == toolsKind || kind == promptsKind {
		it.wire = m.names.wire(c.ID, name)
		prefixed, err := setMember(raw, "name", quote(it.wire))
		if err != nil {
			return nil, err
		}
		it.prefixed = prefixed
	}
	return it, nil
}

// pinCheck tells OnDrift of an item of kind whose pin state st asks for
// it (drift, or an older pin to renew) and reports whether the item is
// held back.
func (m *Mux) pinCheck(kind connectors.PinKind, connector, name string, raw json.RawMessage, st connectors.PinState) bool {
	if (st == connectors.PinChanged || st == connectors.PinOlder) && m.onDrift != nil {
		m.onDrift(kind, connector, name, raw)
	}
	return st == connectors.PinChanged
}

// headerBoundTool decodes a tool whose parameters are mirrored into
// Mcp-Param-* headers (2026-07-28), which the gateway must check and set.
func headerBoundTool(raw []byte) *mcp.Tool {
	// Most tools bind no header: a byte search spares them the decode.
	if !bytes.Contains(raw, []byte("x-mcp-header")) {
		return nil
	}
	var t mcp.Tool
	if json.Unmarshal(raw, &t) != nil {
		return nil
	}
	return &t
}

// do sends one request to connector on the caller's behalf with cred, or
// with a nil r only connects. When the upstream refuses the credential it
// asks once for a fresh one, which replaces cred, and tries again. Once:
// a 401 means the upstream refused the request before running it, so one
// retry is safe, and a second refusal means the fresh token is no better.
func (m *Mux) do(ctx context.Context, caller grants.Caller, c *connectors.Connector, cred *Credential, want era, r *rpc) (*reply, *upstreamState, error) {
	if c.URL == nil {
		// Every way to an upstream passes here: none may speak MCP to a
		// connector that is only an HTTP API, whatever its caller checked.
		return nil, nil, fmt.Errorf("connector %s has no MCP server, only an HTTP API", c.ID)
	}
	for refused := false; ; refused = true {
		up := m.upstream(c, *cred)
		var rep *reply
		var st *upstreamState
		var err error
		if r == nil {
			st, err = up.ensure(ctx, cred.Header, want)
		} else {
			rep, st, err = up.call(ctx, cred.Header, want, r)
		}
		if !errors.Is(err, ErrUnauthorized) || refused {
			return rep, st, err
		}
		var se *StatusError
		challenge := ""
		if errors.As(err, &se) {
			challenge = se.Challenge
		}
		// The source is told which credential was refused, so that when
		// many calls are refused at once it refreshes once and hands the
		// others the token it already has.
		refusedCred := *cred
		fresh, ferr := m.credential(ctx, CredentialRequest{Caller: caller, Connector: c, Refused: &refusedCred, Challenge: challenge})
		if ferr != nil {
			if _, ok := asConsent(ferr); ok {
				return nil, nil, ferr
			}
			// The refusal is the answer: why a refresh failed is the
			// credential source's to log, not the agent's to read.
			return nil, nil, err
		}
		*cred = fresh
	}
}

// UpstreamTools lists every tool that connector id's upstream offers to
// caller's credential, fresh and before the connector's tool policy, pins
// and the grants: what an admin picks a selection from. Each call asks the
// upstream, so it is for the admin API, never an agent's request path; its
// result must not reach an agent, since no grant has filtered it.
func (m *Mux) UpstreamTools(ctx context.Context, caller grants.Caller, id string) ([]json.RawMessage, error) {
	return m.upstreamItems(ctx, caller, id, toolsKind)
}

// UpstreamPrompts lists every prompt that connector id's upstream offers
// to caller's credential, as UpstreamTools lists tools, and with the same
// care: it is for the admin API only.
func (m *Mux) UpstreamPrompts(ctx context.Context, caller grants.Caller, id string) ([]json.RawMessage, error) {
	return m.upstreamItems(ctx, caller, id, promptsKind)
}

// upstreamItems lists every item of kind that connector id's upstream
// offers to caller's credential, before any selection, pin or grant.
func (m *Mux) upstreamItems(ctx context.Context, caller grants.Caller, id string, kind *listKind) ([]json.RawMessage, error) {
	c, ok := m.conns[id]
	if !ok {
		return nil, fmt.Errorf("no connector %q", id)
	}
	if c.URL == nil {
		return nil, fmt.Errorf("connector %q is an HTTP API only: it has no MCP %s", id, kind.field)
	}
	cred, err := m.credential(ctx, CredentialRequest{Caller: caller, Connector: c})
	if err != nil {
		return nil, err
	}
	// A copy with no tool or prompt policy, fetched past the cache: the
	// admin sees every item the upstream has now, and this unfiltered
	// list is never stored where an agent's request could be answered
	// from it.
	open := *c
	open.Tools, open.Prompts = connectors.ToolPolicy{}, connectors.PromptPolicy{}
	l := m.fetch(ctx, caller, &open, cred, kind)
	if l.err != nil {
		return nil, l.err
	}
	out := make([]json.RawMessage, len(l.items))
	for i, it := range l.items {
		out[i] = it.raw
	}
	return out, nil
}
