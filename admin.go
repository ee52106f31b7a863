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
// mcpgate app. It cannot hold one: Caddy makes admin routers with New,
// not from the config, and builds the admin endpoint before it provisions
// the config's apps.
//
// The admin endpoint identifies no user: reaching it is the authority.
// Caddy guards it (loopback by default, the Host checked against DNS
// rebinding, a browser's Origin checked against cross-site requests,
// mutual TLS for remote admin), so these routes add no check of their
// own, and the audit log records the address an admin change came from.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mcpgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin API's routes, each answered with the running
// app's parts and its failure turned into Caddy's admin error. Every
// pattern is under /mcpgate/ and names its method, so that the router
// never shadows Caddy's own routes (/config/, /load, /stop) and
// ServeMux answers a wrong method with 405 itself.
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
// started: before, the store is not open. The active context is the
// config serving now: during a reload it stays the old one until the new
// one has started, so a route never acts on a config that may still fail.
// No mcpgate app is 404, as a route that is not there; an app that has
// not started is 503, which a retry can outlast.
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
	return &admin.API{Registry: a.registry, Live: a.live, Audit: a.obs, Approvals: a.approvals.Load}
}

// adminError is Caddy's admin error for an admin route's failure: its
// status, or 500. It must be a caddy.APIError itself, not one wrapped:
// Caddy's admin handler finds the status with a type assertion, not
// errors.As. The message goes into the response and into Caddy's
// admin.api log line, which is why the admin package's errors never carry
// a secret.
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
