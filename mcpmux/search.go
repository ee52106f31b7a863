package mcpmux

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/toolsearch"
)

// Search mode: a caller with a large view gets, on the aggregated
// endpoint, a tool to search its tools and one to call what it found, in
// place of a tools/list of thousands that would fill its model's context.
// The search ranks only the tools the caller's grants allow (and, for
// per-user connectors, the lists of its own connection), and a call
// through mcpgate_call_tool is routed as the direct call it wraps: the
// same grant check, consent, audit and credential custody.

// The tool search modes.
const (
	// SearchOff lists every tool (the default).
	SearchOff = "off"
	// SearchOn lists the search tools in place of the tools.
	SearchOn = "on"
	// SearchAuto lists the search tools to a caller whose view holds
	// more tools than the threshold, and every tool to the others.
	SearchAuto = "auto"
)

// DefaultSearchThreshold is the largest view that auto lists whole.
const DefaultSearchThreshold = 100

// maxSearchLimit bounds how many tools one search answers.
const maxSearchLimit = 50

// defaultSearchLimit is how many a search answers when it does not say.
const defaultSearchLimit = 10

// ToolSearch is how the aggregated endpoint lists tools.
type ToolSearch struct {
	// Mode is "off" (default: every granted tool is listed), "on" (the
	// search tools are listed in place of them) or "auto" (the search
	// tools for a caller whose view holds more than Threshold tools).
	Mode string `json:"mode,omitempty"`
	// Threshold is, with auto, the largest view that is listed whole.
	// Default 100.
	Threshold int `json:"threshold,omitempty"`
}

// Validate reports a mode that is not one of the three, or a threshold
// below zero or with a mode other than auto.
func (s ToolSearch) Validate() error {
	switch s.Mode {
	case "", SearchOff, SearchOn, SearchAuto:
	default:
		return fmt.Errorf("tool search mode %q must be off, on or auto", s.Mode)
	}
	if s.Threshold < 0 {
		return fmt.Errorf("tool search threshold %d must not be negative", s.Threshold)
	}
	if s.Threshold != 0 && s.Mode != SearchAuto {
		return fmt.Errorf("a tool search threshold goes with mode auto only, not %q", s.Mode)
	}
	return nil
}

// threshold returns the threshold, or its default.
func (s ToolSearch) threshold() int {
	if s.Threshold == 0 {
		return DefaultSearchThreshold
	}
	return s.Threshold
}

// searchKey is the context key of a site's ToolSearch.
type searchKey struct{}

// WithToolSearch returns ctx carrying a site's tool search setting, which
// wins over Options.ToolSearch for the requests served with it.
func WithToolSearch(ctx context.Context, s ToolSearch) context.Context {
	return context.WithValue(ctx, searchKey{}, s)
}

// The search tools' names. No connector can take the id "mcpgate", so
// they can never clash with a connector's tool.
const (
	searchToolName = "mcpgate_search_tools"
	callToolName   = "mcpgate_call_tool"
)

// searchTools are their definitions, as search mode lists them.
var searchTools = []json.RawMessage{
	json.RawMessage(`{"name":"` + searchToolName + `","title":"Search tools",` +
		`"description":"Finds the tools you may call through this gateway that best match a query (words of what you want to do, or a tool's name), best first. ` +
		`Each answer has the tool's name, title, description and inputSchema. Call a tool found here with mcpgate_call_tool, or by its name.",` +
		`"inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"What the tool should do, in a few words."},` +
		`"limit":{"type":"integer","minimum":1,"maximum":50,"default":10,"description":"How many tools to answer at most."}},"required":["query"]},` +
		`"annotations":{"title":"Search tools","readOnlyHint":true,"openWorldHint":false}}`),
	json.RawMessage(`{"name":"` + callToolName + `","title":"Call a tool",` +
		`"description":"Calls a tool that mcpgate_search_tools found, by its name, with its arguments.",` +
		`"inputSchema":{"type":"object","properties":{"name":{"type":"string","description":"The tool's name, as mcpgate_search_tools answered it."},` +
		`"arguments":{"type":"object","description":"The tool's arguments, as its inputSchema describes them."}},"required":["name"]},` +
		`"annotations":{"title":"Call a tool","readOnlyHint":false,"openWorldHint":true}}`),
}

// searcher is a Mux's tool search: the index and what feeds it.
//
// A connector's documents in the index are the union of the tool lists
// the cache holds for it, one per credential, each definition once, and
// a search filters them by the caller's own lists and grants. Not the
// caller's list alone, indexed when it searches: users of a per-user
// connector are listed different tools, so that concurrent searches would
// take turns rewriting the connector's documents (a write lock each, and
// a search could run on another user's documents and miss its own tools).
// Not an index per credential: a thousand users of one connector would
// hold a thousand copies of mostly the same tools. The union is written
// only where a list lands in the cache, and only when its set of
// definitions changed, so that a search never writes; its memory is
// bounded by the cache's, of which it holds each distinct definition
// once. A tool two users are listed with different definitions is one
// document per definition (its variant), and a caller finds only its
// own: its ranking must not hint at the text of a definition only
// another user is listed.
type searcher struct {
	cfg ToolSearch
	// always is a view that allows the tools that search mode lists
	// still (Options.AlwaysList), nil when there are none: the grants'
	// own glob matching, so that the two read patterns alike.
	always *grants.View
	index  *toolsearch.Index
	// used turns true with the first request in search mode: a Mux
	// that no site searches indexes nothing. start indexes what the
	// cache holds by then, once, before any search.
	used  atomic.Bool
	start sync.Once
	// mu guards sources, written where a tool list lands in the cache.
	mu      sync.Mutex
	sources map[string]*source
	// variants maps each list in sources to its items' variants, for
	// the filter of a search, which reads it without mu.
	variants sync.Map // *list → []string
}

// source is what one connector's documents are made of.
type source struct {
	// lists holds, by credential key, the list the cache holds for it.
	lists map[string]*list
	// docs is the union of their tools, each definition once, with how
	// many of the lists hold it.
	docs map[docKey]*unionDoc
}

// docKey names one definition of a tool.
type docKey struct{ name, variant string }

// unionDoc is one definition of a tool and how many lists hold it.
type unionDoc struct {
	doc  toolsearch.Doc
	refs int
}

// init sets s up from opts.
func (s *searcher) init(opts Options) error {
	if err := opts.ToolSearch.Validate(); err != nil {
		return err
	}
	s.cfg, s.index, s.sources = opts.ToolSearch, toolsearch.New(), map[string]*source{}
	if len(opts.AlwaysList) == 0 {
		return nil
	}
	for _, p := range opts.AlwaysList {
		if err := grants.ValidatePattern(p); err != nil {
			return fmt.Errorf("always_list: %w", err)
		}
	}
	p, err := grants.New([]grants.Rule{{Sources: []string{"*"}, Tools: opts.AlwaysList}})
	if err != nil {
		return fmt.Errorf("always_list: %w", err)
	}
	s.always = p.For(grants.Caller{ID: "always_list"})
	return nil
}

// alwaysListed reports whether connector's tool it is listed in search
// mode too.
func (m *Mux) alwaysListed(connector string, it *item) bool {
	return m.search.always != nil && m.search.always.Allows(grants.Tools, connector, it.name, it.readOnly)
}

// searchConfig returns the setting that applies to x: its site's, else
// the Mux's.
func (m *Mux) searchConfig(x *exchange) ToolSearch {
	if s, ok := x.r.Context().Value(searchKey{}).(ToolSearch); ok && s.Mode != "" {
		return s
	}
	return m.search.cfg
}

// searchMode reports whether x is served in search mode, given a, the
// view's whole tools answer: only on the aggregated endpoint, to a caller
// who can see a connector.
func (m *Mux) searchMode(x *exchange, a *readyList) bool {
	if x.scope != "" {
		return false
	}
	cfg := m.searchConfig(x)
	on := false
	switch cfg.Mode {
	case SearchOn:
		on = m.offersBuiltin(x)
	case SearchAuto:
		on = m.offersBuiltin(x) && len(a.entries)-1 > cfg.threshold() // less the built-in tool
	}
	if on {
		m.startIndex()
	}
	return on
}

// searching reports whether x is served in search mode.
func (m *Mux) searching(x *exchange) bool {
	if x.scope != "" {
		return false
	}
	// Only auto needs the view's size, which its ready answer holds.
	var a *readyList
	if m.searchConfig(x).Mode == SearchAuto && m.offersBuiltin(x) {
		a = m.ready(x, toolsKind)
	}
	return m.searchMode(x, a)
}

// listed returns the answer to a list of kind: the view's ready answer, or
// in search mode the search tools and the tools always listed.
func (m *Mux) listed(x *exchange, kind *listKind) *readyList {
	a := m.ready(x, kind)
	if kind != toolsKind || !m.searchMode(x, a) {
		return a
	}
	if s := a.search.Load(); s != nil {
		return s
	}
	s := &readyList{version: a.version, expires: a.expires, listedAt: a.listedAt, creds: a.creds}
	for _, i := range a.always {
		s.entries = append(s.entries, a.entries[i])
	}
	s.entries = append(s.entries, builtinTool)
	s.entries = append(s.entries, searchTools...)
	s.first = m.render(kind, s.entries, 0)
	a.search.Store(s)
	return s
}

// startIndex turns indexing on, the first time, and indexes every tool
// list the cache holds by then; a caller who comes meanwhile waits for it.
// A list that lands at the same time is indexed by one or the other: its
// fetch stores it before it asks used, and this reads the cache after
// setting used.
func (m *Mux) startIndex() {
	m.search.start.Do(func() {
		m.search.used.Store(true)
		m.cache.Range(func(k, v any) bool {
			if key := k.(cacheKey); key.kind == toolsKind {
				m.indexEntry(key, v.(*cacheEntry))
			}
			return true
		})
	})
}

// indexLanded indexes the tool list just stored in e, unless no one
// searches.
func (m *Mux) indexLanded(key cacheKey, e *cacheEntry) {
	if key.kind == toolsKind && m.search.used.Load() {
		m.indexEntry(key, e)
	}
}

// indexEntry makes the index follow e, the cache entry of key: its list
// replaces the one the entry held before in its connector's union, and
// the connector's documents are written again if the union changed. The
// list is read from e under mu, so that of two calls for one entry the
// later indexes what the cache holds now, whichever list made each call.
func (m *Mux) indexEntry(key cacheKey, e *cacheEntry) {
	s := &m.search
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := e.cur.Load()
	if cur != nil && cur.err != nil {
		// A failed fetch left the cache without a list of this
		// credential's: its tools leave the union too.
		cur = nil
	}
	src := s.sources[key.connector]
	if src == nil {
		if cur == nil {
			return
		}
		src = &source{lists: map[string]*list{}, docs: map[docKey]*unionDoc{}}
		s.sources[key.connector] = src
	}
	old := src.lists[key.credential]
	if cur == old {
		return
	}
	// Added before the old list is taken out, so that a definition both
	// hold never leaves the union on the way.
	changed := s.add(src, key.credential, cur, old)
	changed = s.drop(src, old) || changed
	if len(src.lists) == 0 {
		delete(s.sources, key.connector)
	}
	if !changed {
		return
	}
	docs := make([]toolsearch.Doc, 0, len(src.docs))
	for _, u := range src.docs {
		docs = append(docs, u.doc)
	}
	s.index.Replace(key.connector, docs)
}

// add puts l in src as credential's list, and reports whether the union
// gained a definition. old is the list it replaces: one with the same
// items (the same sum) lends l its variants rather than hashing them
// again. The caller holds mu.
func (s *searcher) add(src *source, credential string, l, old *list) bool {
	if l == nil {
		delete(src.lists, credential)
		return false
	}
	src.lists[credential] = l
	var vs []string
	if v, ok := s.variants.Load(old); ok && old.sum == l.sum {
		vs = v.([]string)
	} else {
		vs = make([]string, len(l.items))
		for i := range l.items {
			vs[i] = variant(l.items[i].raw)
		}
	}
	s.variants.Store(l, vs)
	changed := false
	for i := range l.items {
		k := docKey{l.items[i].name, vs[i]}
		u := src.docs[k]
		if u == nil {
			d := toolDoc(&l.items[i])
			d.Variant = vs[i]
			u = &unionDoc{doc: d}
			src.docs[k] = u
			changed = true
		}
		u.refs++
	}
	return changed
}

// drop takes l out of src's union and reports whether the union lost a
// definition. The caller holds mu.
func (s *searcher) drop(src *source, l *list) bool {
	v, ok := s.variants.LoadAndDelete(l)
	if !ok {
		return false
	}
	vs := v.([]string)
	changed := false
	for i := range l.items {
		k := docKey{l.items[i].name, vs[i]}
		if u := src.docs[k]; u != nil {
			if u.refs--; u.refs == 0 {
				delete(src.docs, k)
				changed = true
			}
		}
	}
	return changed
}

// variant is the variant of a tool's definition: a digest of all of it,
// so that two definitions that differ in anything are two documents.
func variant(raw []byte) string {
	sum := sha256.Sum256(raw)
	return string(sum[:])
}

// variantsOf returns the variants of l's items: the ones its indexing
// made, else (a list the cache serves before its fetch has indexed it)
// nil, and the filter hashes the items it asks about.
func (s *searcher) variantsOf(l *list) []string {
	if v, ok := s.variants.Load(l); ok {
		return v.([]string)
	}
	return nil
}

// toolDoc is the document of a tool.
func toolDoc(it *item) toolsearch.Doc {
	d := toolsearch.Doc{Name: it.name, InputSchema: member(it.raw, "inputSchema")}
	d.Description, _ = stringMember(it.raw, "description")
	d.Title = toolTitle(it.raw)
	return d
}

// toolTitle is a tool's title, or its annotations' (Tools: title takes
// precedence over annotations.title).
func toolTitle(raw []byte) string {
	if t, ok := stringMember(raw, "title"); ok {
		return t
	}
	t, _ := stringMember(member(raw, "annotations"), "title")
	return t
}

// searchHit is one tool a search answers.
type searchHit struct {
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
}

// callSearch answers mcpgate_search_tools.
func (m *Mux) callSearch(x *exchange, params []byte) *reply {
	if m.annotate != nil {
		m.annotate(x.r, builtinConnector, searchToolName)
	}
	args := member(params, "arguments")
	query, ok := stringMember(args, "query")
	limit, err := searchLimit(member(args, "limit"))
	if !ok {
		err = errors.New("query must be a string")
	}
	if err != nil {
		return toolError(err.Error(), map[string]string{"error": err.Error()})
	}
	own := m.searchLists(x)
	hits, err := m.search.index.SearchDocs(query, limit, ownFilter(own, x.view))
	if err != nil {
		return toolError(err.Error(), map[string]string{"error": err.Error()})
	}
	out := struct {
		Tools []searchHit `json:"tools"`
	}{Tools: make([]searchHit, 0, len(hits))}
	for _, h := range hits {
		// The caller's own list is the answer's source, not the index:
		// what the caller would call is what its connection lists.
		out.Tools = append(out.Tools, hitOf(own, h))
	}
	return structured(out)
}

// ownFilter is a search's filter for a caller whose tool lists are own
// and whose grants are view: a document is a candidate when the caller's
// own list at its connector holds it, with the definition the index has,
// and the grants allow it.
func ownFilter(own map[string]ownList, view *grants.View) func(*toolsearch.Doc) bool {
	return func(d *toolsearch.Doc) bool {
		o, ok := own[d.Connector]
		if !ok {
			return false
		}
		i, ok := o.l.byName[d.Name]
		return ok && o.variant(i) == d.Variant && view.Allows(grants.Tools, d.Connector, d.Name, o.l.items[i].readOnly)
	}
}

// ownList is one of a caller's tool lists and its items' variants.
type ownList struct {
	l        *list
	variants []string // nil: not indexed yet, hashed when asked
}

// variant returns the variant of the list's item i.
func (o ownList) variant(i int) string {
	if o.variants == nil {
		return variant(o.l.items[i].raw)
	}
	return o.variants[i]
}

// searchLists gathers the caller's tool lists, by connector. A search
// allows a tool when the caller's own list at its connector holds it, with
// the definition the index has, and the grants allow it, as a tools/list
// would list it: a connector the caller has no connection to has no list
// here, and none of its tools is found. Fetching a list indexes it where
// it lands in the cache (indexLanded); a search itself never writes the
// index.
func (m *Mux) searchLists(x *exchange) map[string]ownList {
	conns := m.visible(x.view, "")
	lists := m.gather(x, conns, toolsKind)
	own := make(map[string]ownList, len(conns))
	for i, c := range conns {
		if lists[i] != nil {
			own[c.ID] = ownList{lists[i], m.search.variantsOf(lists[i])}
		}
	}
	return own
}

// hitOf is the answer for h, from the caller's own list.
func hitOf(own map[string]ownList, h toolsearch.Hit) searchHit {
	l := own[h.Connector].l
	it := &l.items[l.byName[h.Name]]
	d := toolDoc(it)
	return searchHit{Name: it.wire, Title: d.Title, Description: d.Description, InputSchema: d.InputSchema}
}

// searchLimit reads a search's limit: 10 when absent, at most 50.
func searchLimit(raw json.RawMessage) (int, error) {
	if raw == nil || string(raw) == "null" {
		return defaultSearchLimit, nil
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || f != math.Trunc(f) || f < 1 {
		return 0, fmt.Errorf("limit must be a whole number from 1 to %d", maxSearchLimit)
	}
	return int(min(f, maxSearchLimit)), nil
}

// unwrapCall returns the params of the call that a call of
// mcpgate_call_tool wraps, so that it is routed, judged and audited as
// that call made directly: its name and arguments in place of the
// wrapper's, every other member (_meta, requestState, inputResponses)
// kept. Any other call's params come back as they are, as do those of
// mcpgate_call_tool outside search mode, where it does not exist. A
// wrapper with no name is refused as a call with no name would be.
func (m *Mux) unwrapCall(x *exchange, name string, params []byte) (string, []byte, *reply) {
	if name != callToolName || !m.searching(x) {
		return name, params, nil
	}
	if m.annotate != nil {
		m.annotate(x.r, builtinConnector, callToolName)
	}
	args := member(params, "arguments")
	inner, ok := stringMember(args, "name")
	if !ok {
		return "", nil, invalid(failure(errorf(codeInvalidParams, "arguments.name must be a string")))
	}
	innerArgs := member(args, "arguments")
	if innerArgs != nil && (len(innerArgs) == 0 || innerArgs[0] != '{') {
		return "", nil, invalid(failure(errorf(codeInvalidParams, "arguments.arguments must be an object")))
	}
	out, err := setMember(params, "name", quote(inner))
	if err == nil {
		out, err = setMember(out, "arguments", innerArgs)
	}
	if err != nil {
		return "", nil, invalid(failure(errorf(codeInvalidParams, "%v", err)))
	}
	return inner, out, nil
}

// routeCall routes a tools/call, unwrapping mcpgate_call_tool first, and
// returns the params it routed, for the Observer. The name is read once,
// here, for both.
func (m *Mux) routeCall(x *exchange, params []byte) (*reply, toolRoute, []byte) {
	name, ok := stringMember(params, "name")
	if !ok {
		return invalid(failure(errorf(codeInvalidParams, "params.name must be a string"))), toolRoute{}, params
	}
	name, inner, rep := m.unwrapCall(x, name, params)
	if rep != nil {
		return rep, toolRoute{connector: builtinConnector, tool: callToolName}, params
	}
	rep, route := m.routeTool(x, name, inner)
	return rep, route, inner
}

// routeSearch answers mcpgate_search_tools, in search mode only: outside
// it the tool does not exist, and ok is false.
func (m *Mux) routeSearch(x *exchange, name string, params []byte) (rep *reply, ok bool) {
	if name != searchToolName || !m.searching(x) {
		return nil, false
	}
	return m.callSearch(x, params), true
}
