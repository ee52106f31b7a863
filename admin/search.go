package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/toolsearch"
)

// searchAnswer answers GET /mcpgate/tools/search: whose search it was and
// what it found, with the connectors it could not search.
type searchAnswer struct {
	User   string   `json:"user"`
	Groups []string `json:"groups,omitempty"`
	Query  string   `json:"query"`
	mcpmux.SearchAnswer
}

// searchTools answers GET /mcpgate/tools/search?q=…&user=…&groups=…&limit=…
// with what that caller would find with mcpgate_search_tools: the same
// ranking, over only the tools its grants allow. A per-user connector's
// tools are searched only in the list the gateway has cached for that
// user: the admin's question must not call the upstream with the user's
// token. The answer's "skipped" names each connector not searched, and
// why.
func (api *API) searchTools(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	caller, err := queryCaller(q, "whose search")
	if err != nil {
		return err
	}
	req, err := searchRequest(q)
	if err != nil {
		return err
	}
	g := api.Live.Current()
	req.Caller = caller
	req.CachedOnly = func(id string) bool {
		_, consent, ok := g.OAuthFor(id)
		return ok && consent == oauthflow.PerUser
	}
	found, err := g.Mux().Search(r.Context(), req)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", searchError(err))
	}
	return write(w, http.StatusOK, searchAnswer{User: caller.ID, Groups: caller.Groups, Query: req.Query, SearchAnswer: found})
}

// queryCaller reads the caller a route asks about from ?user= and
// ?groups=; what names the question, for the error without a user.
func queryCaller(q url.Values, what string) (grants.Caller, error) {
	caller := grants.Caller{ID: q.Get("user"), Groups: grants.SplitList(strings.Join(q["groups"], ","))}
	if caller.ID == "" {
		return caller, errorf(http.StatusBadRequest, "say %s with ?user=<id> (the CLI's --user)", what)
	}
	return caller, nil
}

// searchRequest reads the query and the limit of a search.
func searchRequest(q url.Values) (mcpmux.SearchRequest, error) {
	req := mcpmux.SearchRequest{Query: q.Get("q")}
	if strings.TrimSpace(req.Query) == "" {
		return req, errorf(http.StatusBadRequest, "say what to search for with ?q=<words> (the CLI's query)")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return req, errorf(http.StatusBadRequest, "limit %q: %v", s, mcpmux.ErrSearchLimit)
		}
		req.Limit = n
	}
	return req, nil
}

// searchError says what is wrong with a search the mux refused.
func searchError(err error) error {
	if errors.Is(err, toolsearch.ErrQueryTooLong) {
		return errors.New("the query is longer than " + strconv.Itoa(toolsearch.MaxQueryBytes) + " bytes, the bound of an agent's search too")
	}
	return err
}
