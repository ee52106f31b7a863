package admin

import "net/http"

// updateConnector answers PATCH /mcpgate/connectors/{id}. (being built)
func (api *API) updateConnector(w http.ResponseWriter, r *http.Request) error {
	return errorf(http.StatusNotImplemented, "updating a connector is not built yet")
}
