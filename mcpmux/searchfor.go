package mcpmux

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// SearchRequest asks what a caller would find with mcpgate_search_tools:
// the admin API's question, so that an admin can check what an agent
// sees.
type SearchRequest struct {
	// Caller is whose search it is.
	Caller grants.Caller
	// Query is what the search is for.
	Query string
	// Limit is how many tools to answer at most: 1 to 50, 0 for 10.
	Limit int
	// CachedOnly reports the connectors whose lists are read from the
	// cache only, never fetched: per-user ones, whose upstream an admin's
	// question must not ask with the user's token. nil fetches any list
	// that is not cached, as the caller's own search would.
	CachedOnly func(connector string) bool
}

// SearchAnswer is what a caller would find.
type SearchAnswer struct {
	// Tools are the tools found, best first.
	Tools []FoundTool `json:"tools"`
	// Skipped are the connectors the caller may use whose tools were
	// not searched, each with why: no list of the caller's is cached,
	// the caller is not connected, or listing failed.
	Skipped []SkippedConnector `json:"skipped,omitempty"`
}

// FoundTool is one tool a search found: its connector and upstream name,
// and the answer mcpgate_search_tools gives of it (the name the agent
// calls it by, title, description and input schema).
type FoundTool struct {
	Connector string `json:"connector"`
	Tool      string `json:"tool"`
	searchHit
}

// SkippedConnector is a connector whose tools a search did not see.
type SkippedConnector struct {
	Connector string `json:"connector"`
	Reason    string `json:"reason"`
}

// ErrSearchLimit is the error of a limit out of range.
var ErrSearchLimit = fmt.Errorf("the limit must be a whole number from 1 to %d", maxSearchLimit)

// Search answers what req.Caller would find with mcpgate_search_tools:
// the same index, ranking and filter, by the caller's grants and lists.
// Its error is a bad query or limit (toolsearch's errors, or
// ErrSearchLimit); a connector it could not search is in the answer's
// Skipped. It writes nothing but what a list fetched lands in the cache.
func (m *Mux) Search(ctx context.Context, req SearchRequest) (SearchAnswer, error) {
	limit := req.Limit
	if limit == 0 {
		limit = defaultSearchLimit
	}
	if limit < 1 || limit > maxSearchLimit {
		return SearchAnswer{}, ErrSearchLimit
	}
	// A search of limit 0 checks the query and reads nothing: a bad one
	// is refused before any upstream is asked for a list.
	if _, err := m.search.index.SearchDocs(req.Query, 0, nil); err != nil {
		return SearchAnswer{}, err
	}
	m.startIndex()
	view := m.view(req.Caller)
	own, skipped := m.callerLists(ctx, req, view)
	hits, err := m.search.index.SearchDocs(req.Query, limit, ownFilter(own, view))
	if err != nil {
		return SearchAnswer{}, err
	}
	out := SearchAnswer{Tools: make([]FoundTool, 0, len(hits)), Skipped: skipped}
	for _, h := range hits {
		out.Tools = append(out.Tools, FoundTool{Connector: h.Connector, Tool: h.Name, searchHit: hitOf(own, h)})
	}
	return out, nil
}

// callerLists gathers the caller's tool lists by connector, as a search of
// its own would (searchLists), but reading a CachedOnly connector's from
// the cache, and says which connectors it has none of and why.
func (m *Mux) callerLists(ctx context.Context, req SearchRequest, view *grants.View) (map[string]ownList, []SkippedConnector) {
	own := map[string]ownList{}
	var skipped []SkippedConnector
	for _, c := range m.visible(view, "") {
		if !view.HasItems(c.ID) {
			continue // a search never lists it either
		}
		// The internal source, not Credential: an admin's question is no
		// use of the connector by the caller.
		cred, err := m.credential(ctx, CredentialRequest{Caller: req.Caller, Connector: c})
		if cr, ok := errors.AsType[*ConsentRequired](err); ok {
			skipped = append(skipped, SkippedConnector{c.ID, "not connected: " + cr.Message})
			continue
		}
		if err != nil {
			skipped = append(skipped, SkippedConnector{c.ID, "no credential: " + err.Error()})
			continue
		}
		var l *list
		if req.CachedOnly != nil && req.CachedOnly(c.ID) {
			if e, ok := m.cache.Load(cacheKey{c.ID, cred.Key, toolsKind}); ok {
				l = e.(*cacheEntry).cur.Load()
			}
			if l == nil {
				skipped = append(skipped, SkippedConnector{c.ID, "the gateway holds no tool list of this user's: it has one once an agent of theirs lists or searches"})
				continue
			}
		} else {
			l, _ = m.list(ctx, req.Caller, c, cred, toolsKind)
		}
		if l == nil {
			continue
		}
		if l.err != nil {
			skipped = append(skipped, SkippedConnector{c.ID, "listing its tools failed: " + l.err.Error()})
			continue
		}
		own[c.ID] = ownList{l, m.search.variantsOf(l)}
	}
	return own, skipped
}

// IsSearch reports whether c is a call of mcpgate_search_tools: a
// search, which an Observer may count as one rather than as a tool call.
func (c ToolCall) IsSearch() bool {
	return c.Connector == builtinConnector && c.Tool == searchToolName
}
