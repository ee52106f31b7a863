package admin

import (
	"net/http"

	"github.com/mcpgate/caddy-mcpgate/gateway"
)

// listConnectors answers GET /mcpgate/connectors.
func (api *API) listConnectors(w http.ResponseWriter, r *http.Request) error {
	g, snap := api.Live.Current(), api.Registry.Snapshot()
	out := make([]gateway.ConnectorView, len(g.Connectors()))
	for i, c := range g.Connectors() {
		out[i] = g.View(r.Context(), snap, c)
	}
	return write(w, http.StatusOK, map[string]any{"connectors": out})
}
