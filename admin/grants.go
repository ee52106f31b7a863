package admin

import (
	"net/http"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// grants answers GET /mcpgate/grants?user=…&groups=…[&tool=c/name]:
// the effective decision for that caller on every connector, and on each
// tool that a selection, the config or a tool parameter names.
func (api *API) grants(w http.ResponseWriter, r *http.Request) error {
	caller, asked, err := grantsQuery(r)
	if err != nil {
		return err
	}
	g := api.Live.Current()
	for conn := range asked {
		if _, ok := g.Connector(conn); !ok {
			return errorf(http.StatusNotFound, "no connector %q", conn)
		}
	}
	view := api.Policy.For(caller)
	return write(w, http.StatusOK, map[string]any{
		"user": caller.ID, "groups": caller.Groups, "admin": view.IsAdmin(), "connectors": g.Explain(view, api.Rules, asked),
	})
}

// grantsQuery reads whose grants, and which tools besides the known ones,
// GET /mcpgate/grants asks about.
func grantsQuery(r *http.Request) (grants.Caller, map[string][]string, error) {
	q := r.URL.Query()
	caller := grants.Caller{ID: q.Get("user"), Groups: grants.SplitList(strings.Join(q["groups"], ","))}
	if caller.ID == "" {
		return caller, nil, errorf(http.StatusBadRequest, "say whose grants with ?user=<id> (the CLI's --user)")
	}
	asked := map[string][]string{}
	for _, t := range q["tool"] {
		conn, name, ok := strings.Cut(t, "/")
		if !ok || conn == "" || name == "" {
			return caller, nil, errorf(http.StatusBadRequest, "tool %q: say <connector>/<tool>", t)
		}
		asked[conn] = append(asked[conn], name)
	}
	return caller, asked, nil
}

// addGrant answers POST /mcpgate/grants. (being built)
func (api *API) addGrant(w http.ResponseWriter, r *http.Request) error {
	return errorf(http.StatusNotImplemented, "runtime grants are not built yet")
}

// removeGrant answers DELETE /mcpgate/grants/{id}. (being built)
func (api *API) removeGrant(w http.ResponseWriter, r *http.Request) error {
	return errorf(http.StatusNotImplemented, "runtime grants are not built yet")
}
