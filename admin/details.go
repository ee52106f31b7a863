package admin

import "net/http"

// showConnector answers GET /mcpgate/connectors/{id}.
func (api *API) showConnector(w http.ResponseWriter, r *http.Request) error {
	g, c, err := api.lookup(r)
	if err != nil {
		return err
	}
	return write(w, http.StatusOK, g.View(r.Context(), api.Registry.Snapshot(), c))
}
