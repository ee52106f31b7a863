package mcpmux

import (
	"context"
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
type searcher struct {
	cfg ToolSearch
	// always is a view that allows the tools that search mode lists
	// still (Options.AlwaysList), nil when there are none: the grants'
	// own glob matching, so that the two read patterns alike.
	always *grants.View
	index  *toolsearch.Index
	// used turns true with the first request in search mode: a Mux
	// that no site searches indexes nothing.
	used atomic.Bool
	// mu guards sums, the hash of the list each connector's documents
	// were made from, so that a list fetched again unchanged, or the
	// same list fetched with another caller's credential, costs nothing.
	mu   sync.Mutex
	sums map[string][32]byte
}

// init sets s up from opts.
func (s *searcher) init(opts Options) error {
	if err := opts.ToolSearch.Validate(); err != nil {
		return err
	}
	s.cfg, s.index, s.sums = opts.ToolSearch, toolsearch.New(), map[string][32]byte{}
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
	if on && !m.search.used.Load() {
		m.search.used.Store(true)
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

// indexList makes connector's documents those of l, unless they are
// already, or no one searches.
func (m *Mux) indexList(connector string, l *list) {
	if l == nil || l.err != nil || !m.search.used.Load() {
		return
	}
	s := &m.search
	s.mu.Lock()
	defer s.mu.Unlock()
	if sum, ok := s.sums[connector]; ok && sum == l.sum {
		return
	}
	s.sums[connector] = l.sum
	docs := make([]toolsearch.Doc, len(l.items))
	for i := range l.items {
		docs[i] = toolDoc(&l.items[i])
	}
	s.index.Replace(connector, docs)
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
	hits, err := m.search.index.Search(query, limit, func(connector, tool string) bool {
		l := own[connector]
		if l == nil {
			return false
		}
		i, ok := l.byName[tool]
		return ok && x.view.Allows(grants.Tools, connector, tool, l.items[i].readOnly)
	})
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

// searchLists gathers the caller's tool lists, by connector, and indexes
// any the index does not hold yet. A search allows a tool when the
// caller's own list at its connector holds it and the grants allow it, as
// a tools/list would list it: a connector the caller has no connection to
// has no list here, and none of its tools is found.
func (m *Mux) searchLists(x *exchange) map[string]*list {
	conns := m.visible(x.view, "")
	lists := m.gather(x, conns, toolsKind)
	own := make(map[string]*list, len(conns))
	for i, c := range conns {
		if lists[i] != nil {
			own[c.ID] = lists[i]
			m.indexList(c.ID, lists[i])
		}
	}
	return own
}

// hitOf is the answer for h, from the caller's own list.
func hitOf(own map[string]*list, h toolsearch.Hit) searchHit {
	l := own[h.Connector]
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
func (m *Mux) unwrapCall(x *exchange, params []byte) ([]byte, *reply) {
	if name, _ := stringMember(params, "name"); name != callToolName || !m.searching(x) {
		return params, nil
	}
	if m.annotate != nil {
		m.annotate(x.r, builtinConnector, callToolName)
	}
	args := member(params, "arguments")
	inner, ok := stringMember(args, "name")
	if !ok {
		return nil, invalid(failure(errorf(codeInvalidParams, "arguments.name must be a string")))
	}
	innerArgs := member(args, "arguments")
	if innerArgs != nil && (len(innerArgs) == 0 || innerArgs[0] != '{') {
		return nil, invalid(failure(errorf(codeInvalidParams, "arguments.arguments must be an object")))
	}
	out, err := setMember(params, "name", quote(inner))
	if err == nil {
		out, err = setMember(out, "arguments", innerArgs)
	}
	if err != nil {
		return nil, invalid(failure(errorf(codeInvalidParams, "%v", err)))
	}
	return out, nil
}

// routeCall routes a tools/call, unwrapping mcpgate_call_tool first, and
// returns the params it routed, for the Observer.
func (m *Mux) routeCall(x *exchange, params []byte) (*reply, toolRoute, []byte) {
	inner, rep := m.unwrapCall(x, params)
	if rep != nil {
		return rep, toolRoute{connector: builtinConnector, tool: callToolName}, params
	}
	rep, route := m.routeTool(x, inner)
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
