package admin

import (
	"context"
	"net/http"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// listedConnector is a connector in the admin list: its view and the
// status filter's group it is in.
type listedConnector struct {
	gateway.ConnectorView
	// Group is active, needs_attention or inactive (see groupOf).
	Group connectors.Group `json:"group"`
}

// listConnectors answers GET /mcpgate/connectors[?status=…][&user=…]:
// every connector, or those of one group of the status filter, which
// takes the groups of GET /connectors (connectors.Groups). With ?user=, a
// per-user connector shows and is grouped by that user's connection.
func (api *API) listConnectors(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	group, err := connectors.ParseGroup(q.Get("status"))
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Err: err}
	}
	g, snap := api.Live.Current(), api.Registry.Snapshot()
	out := []listedConnector{}
	for _, c := range g.Connectors() {
		v := listedConnector{ConnectorView: g.View(r.Context(), snap, c)}
		if user := q.Get("user"); user != "" {
			v.Connection = userConnection(r.Context(), g, v.ConnectorView, user)
		}
		if v.Group = groupOf(v.ConnectorView); group.Has(v.Group) {
			out = append(out, v)
		}
	}
	return write(w, http.StatusOK, map[string]any{"connectors": out})
}

// userConnection is user's connection to a per-user connector v, or v's
// own connection (the shared one, or none) for any other.
func userConnection(ctx context.Context, g *gateway.Gateway, v gateway.ConnectorView, user string) *connectors.Connection {
	if v.Consent != string(oauthflow.PerUser) || g.Manager() == nil {
		return v.Connection
	}
	conn := g.Manager().Connection(ctx, v.ID, user)
	return &conn
}

// groupOf is the group of connector v as the admin API can tell without
// asking its upstream, which it does not do to list. A disabled connector
// is inactive, whatever its tokens; one with a connection (shared consent,
// or a user's under ?user=) is grouped by that connection's state; any
// other (a static credential, none, or per-user consent with no user
// named) by itself: active. Each user's per-user connection is theirs,
// shown on their Connectors page, and says nothing of the connector.
func groupOf(v gateway.ConnectorView) connectors.Group {
	switch {
	case v.Status == string(connectors.StatusDisabled):
		return connectors.GroupInactive
	case v.Connection == nil:
		return connectors.GroupActive
	}
	return connectors.GroupOf(v.Connection.Status(), v.Connection.State)
}
