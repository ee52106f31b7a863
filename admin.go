package mcpgate

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/admin"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves /mcpgate/ on Caddy's admin endpoint with the admin
// package's routes. It keeps no state: every request asks the running
// mcpgate app.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mcpgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin API's routes, each answered with the running
// app's parts and its failure turned into Caddy's admin error.
func (adminAPI) Routes() []caddy.AdminRoute {
	out := make([]caddy.AdminRoute, len(admin.Routes))
	for i, rt := range admin.Routes {
		out[i] = caddy.AdminRoute{Pattern: rt.Pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			a, err := runningApp()
			if err != nil {
				return err
			}
			return adminError(rt.Serve(a.admin(), w, r))
		})}
	}
	return out
}

// runningApp returns the mcpgate app of the running config, once it has
// started: before, the store is not open.
func runningApp() (*App, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("mcpgate")
	if err != nil || app == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("mcpgate is not running: the config has no mcpgate app")}
	}
	a := app.(*App)
	if a.live == nil || a.vault.sealed == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("mcpgate has not started yet")}
	}
	return a, nil
}

// admin returns the parts of a that the admin API acts on.
func (a *App) admin() *admin.API {
	return &admin.API{Registry: a.registry, Live: a.live, Policy: a.policy, Rules: a.Grants, Audit: a.obs}
}

// adminError is Caddy's admin error for an admin route's failure: its
// status, or 500.
func adminError(err error) error {
	if err == nil {
		return nil
	}
	status := http.StatusInternalServerError
	if e, ok := errors.AsType[*admin.Error](err); ok {
		status = e.Status
	}
	return caddy.APIError{HTTPStatus: status, Err: err}
}

// Interface guards
var (
	_ caddy.Module      = (*adminAPI)(nil)
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
