package mcpgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves /mcpgate/ on Caddy's admin endpoint. It keeps no state:
// every request asks the running mcpgate app.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mcpgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// maxAdminBody caps an admin request's body.
const maxAdminBody = 1 << 20

// Routes returns the admin API's routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	routes := []struct {
		pattern string
		serve   func(*App, http.ResponseWriter, *http.Request) error
	}{
		{"GET /mcpgate/connectors", (*App).adminListConnectors},
		{"POST /mcpgate/connectors", (*App).adminAddConnector},
		{"GET /mcpgate/connectors/{id}", (*App).adminShowConnector},
		{"DELETE /mcpgate/connectors/{id}", (*App).adminRemoveConnector},
		{"POST /mcpgate/connectors/{id}/connect", (*App).adminConnect},
		{"POST /mcpgate/connectors/{id}/disconnect", (*App).adminDisconnect},
		{"POST /mcpgate/connectors/{id}/reconnect", (*App).adminReconnect},
		{"GET /mcpgate/connectors/{id}/tools", (*App).adminTools},
		{"PUT /mcpgate/connectors/{id}/tools", (*App).adminRegisterTools},
		{"POST /mcpgate/connectors/{id}/tools/approve", (*App).adminApproveTools},
		{"GET /mcpgate/connectors/{id}/diagnose", (*App).adminDiagnose},
		{"GET /mcpgate/presets", (*App).adminPresets},
		{"GET /mcpgate/grants", (*App).adminGrants},
		{"GET /mcpgate/audit", (*App).adminAudit},
	}
	out := make([]caddy.AdminRoute, len(routes))
	for i, rt := range routes {
		out[i] = caddy.AdminRoute{Pattern: rt.pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			a, err := runningApp()
			if err != nil {
				return err
			}
			return rt.serve(a, w, r)
		})}
	}
	return out
}

// runningApp returns the mcpgate app of the running config.
func runningApp() (*App, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("mcpgate")
	if err != nil || app == nil {
		return nil, apiError(http.StatusNotFound, "mcpgate is not running: the config has no mcpgate app")
	}
	a := app.(*App)
	if a.live == nil || a.vault.sealed == nil {
		return nil, apiError(http.StatusServiceUnavailable, "mcpgate has not started yet")
	}
	return a, nil
}

// apiError is an admin API error with its status.
func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// registryStatuses answer the registry's errors by kind.
var registryStatuses = map[connectors.ErrorKind]int{
	connectors.KindInvalid:  http.StatusBadRequest,
	connectors.KindNotFound: http.StatusNotFound,
	connectors.KindConflict: http.StatusConflict,
	connectors.KindUpstream: http.StatusBadGateway,
	connectors.KindStorage:  http.StatusInternalServerError,
}

// registryError is the admin API's answer to a registry error: its
// status by kind, 500 for any other error.
func registryError(err error) error {
	status := http.StatusInternalServerError
	if re, ok := errors.AsType[*connectors.Error](err); ok {
		status = registryStatuses[re.Kind]
	}
	return caddy.APIError{HTTPStatus: status, Err: err}
}

// writeAdmin writes v as the JSON answer.
func writeAdmin(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readAdmin decodes the request's JSON body into v, strictly: unknown,
// duplicate and case-variant members and trailing data are errors.
func readAdmin(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return apiError(http.StatusBadRequest, "reading the body: %v", err)
	}
	if err := strictjson.Unmarshal(body, v, true); err != nil {
		return apiError(http.StatusBadRequest, "the body is not valid JSON for this route: %v", err)
	}
	return nil
}

// lookup returns connector id of the gateway serving now, or a 404.
func (a *App) lookup(r *http.Request) (*gateway.Gateway, *connectors.Connector, error) {
	id := r.PathValue("id")
	g := a.live.Current()
	c, ok := g.Connector(id)
	if !ok {
		return nil, nil, apiError(http.StatusNotFound, "no connector %q", id)
	}
	return g, c, nil
}

// adminListConnectors answers GET /mcpgate/connectors.
func (a *App) adminListConnectors(w http.ResponseWriter, r *http.Request) error {
	g, snap := a.live.Current(), a.registry.Snapshot()
	out := make([]gateway.ConnectorView, len(g.Connectors()))
	for i, c := range g.Connectors() {
		out[i] = g.View(r.Context(), snap, c)
	}
	return writeAdmin(w, http.StatusOK, map[string]any{"connectors": out})
}

// adminShowConnector answers GET /mcpgate/connectors/{id}.
func (a *App) adminShowConnector(w http.ResponseWriter, r *http.Request) error {
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	return writeAdmin(w, http.StatusOK, g.View(r.Context(), a.registry.Snapshot(), c))
}

// addedConnector answers POST /mcpgate/connectors: the connector, and
// where to consent to it.
type addedConnector struct {
	gateway.ConnectorView
	ConnectURL   string `json:"connect_url,omitempty"`
	AuthURL      string `json:"auth_url,omitempty"`
	ConsentError string `json:"consent_error,omitempty"`
}

// adminAddConnector answers POST /mcpgate/connectors: the registry checks
// the connector as a config connector is checked, keeps it, and the
// gateway serves it at once.
func (a *App) adminAddConnector(w http.ResponseWriter, r *http.Request) error {
	var req connectors.AddRequest
	if err := readAdmin(r, &req); err != nil {
		return err
	}
	e, err := a.registry.Add(r.Context(), req)
	if err != nil {
		return registryError(err)
	}
	a.recordAdmin("", e.Config.ID, adminDetail(r, "added the runtime connector"))
	return writeAdmin(w, http.StatusCreated, a.added(r.Context(), e.Config.ID))
}

// added shows a connector just added, with where to consent: for shared
// consent, a flow is started for the admin at once.
func (a *App) added(ctx context.Context, id string) addedConnector {
	g := a.live.Current()
	c, _ := g.Connector(id)
	out := addedConnector{ConnectorView: g.View(ctx, a.registry.Snapshot(), c)}
	if m, consent, ok := g.OAuthFor(id); ok {
		out.ConnectURL = g.ConnectURL(id)
		if consent == oauthflow.Shared {
			var err error
			if out.AuthURL, err = m.Start(ctx, id, "", ""); err != nil {
				out.ConsentError = err.Error() + "; run diagnose"
			}
		}
	}
	return out
}

// adminRemoveConnector answers DELETE /mcpgate/connectors/{id}: it
// revokes the connector's tokens, forgets its records and stops serving
// it.
func (a *App) adminRemoveConnector(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var revs []oauthflow.Revocation
	err := a.registry.Remove(r.Context(), id, func(connectors.Entry) (err error) {
		if m, _, ok := a.live.Current().OAuthFor(id); ok {
			if revs, err = m.Remove(r.Context(), id, "the connector was removed"); err != nil {
				return apiError(http.StatusInternalServerError, "revoking the tokens of %s: %v", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return registryError(err)
	}
	a.recordAdmin("", id, adminDetail(r, "removed the runtime connector"))
	if revs == nil {
		revs = []oauthflow.Revocation{} // [] rather than null: there were none
	}
	return writeAdmin(w, http.StatusOK, map[string]any{"removed": id, "revocations": revs})
}

// consentTarget is what a consent route acts on: a connector's OAuth
// manager, the connector, and the user, ?user=, needed under per-user
// consent.
type consentTarget struct {
	m        *oauthflow.Manager
	id, user string
}

// oauthTarget returns the consent target a route names.
func (a *App) oauthTarget(r *http.Request) (consentTarget, error) {
	g, c, err := a.lookup(r)
	if err != nil {
		return consentTarget{}, err
	}
	m, consent, ok := g.OAuthFor(c.ID)
	if !ok {
		return consentTarget{}, apiError(http.StatusBadRequest, "connector %s does not use OAuth: there is nothing to connect", c.ID)
	}
	user := r.URL.Query().Get("user")
	if consent == oauthflow.PerUser && user == "" {
		return consentTarget{}, apiError(http.StatusBadRequest, "connector %s has per-user consent: say whose with ?user=<id> (the CLI's --user)", c.ID)
	}
	return consentTarget{m, c.ID, user}, nil
}

// start begins a consent and returns its authorization URL.
func (t consentTarget) start(r *http.Request) (string, error) {
	authURL, err := t.m.Start(r.Context(), t.id, t.user, "")
	if err != nil {
		return "", apiError(http.StatusBadGateway, "starting consent for %s: %v", t.id, err)
	}
	return authURL, nil
}

// disconnect purges and revokes the credential.
func (t consentTarget) disconnect(r *http.Request, reason string) (oauthflow.Revocation, error) {
	rev, err := t.m.Disconnect(r.Context(), t.id, t.user, reason)
	if err != nil {
		return rev, apiError(http.StatusInternalServerError, "disconnecting %s: %v", t.id, err)
	}
	return rev, nil
}

// adminConnect answers POST /mcpgate/connectors/{id}/connect with the
// authorization URL of a new consent. Under shared consent the flow is
// bound to no user; under per-user consent to ?user=, who must complete
// it.
func (a *App) adminConnect(w http.ResponseWriter, r *http.Request) error {
	t, err := a.oauthTarget(r)
	if err != nil {
		return err
	}
	authURL, err := t.start(r)
	if err != nil {
		return err
	}
	a.recordAdmin(t.user, t.id, adminDetail(r, "started a consent"))
	return writeAdmin(w, http.StatusOK, map[string]string{"auth_url": authURL})
}

// adminDisconnect answers POST /mcpgate/connectors/{id}/disconnect.
func (a *App) adminDisconnect(w http.ResponseWriter, r *http.Request) error {
	t, err := a.oauthTarget(r)
	if err != nil {
		return err
	}
	rev, err := t.disconnect(r, "disconnected by an admin")
	if err != nil {
		return err
	}
	a.recordAdmin(t.user, t.id, adminDetail(r, "disconnected"))
	return writeAdmin(w, http.StatusOK, rev)
}

// adminReconnect answers POST /mcpgate/connectors/{id}/reconnect: a
// disconnect, then a new consent.
func (a *App) adminReconnect(w http.ResponseWriter, r *http.Request) error {
	t, err := a.oauthTarget(r)
	if err != nil {
		return err
	}
	rev, err := t.disconnect(r, "reconnected by an admin")
	if err != nil {
		return err
	}
	authURL, err := t.start(r)
	if err != nil {
		return err
	}
	a.recordAdmin(t.user, t.id, adminDetail(r, "reconnected"))
	return writeAdmin(w, http.StatusOK, map[string]any{"auth_url": authURL, "revocation": rev})
}

// adminDiagnose answers GET /mcpgate/connectors/{id}/diagnose. It is ok
// when every step ran and the last, the authorization URL, worked.
func (a *App) adminDiagnose(w http.ResponseWriter, r *http.Request) error {
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	m, _, ok := g.OAuthFor(c.ID)
	if !ok {
		return apiError(http.StatusBadRequest, "connector %s does not use OAuth: diagnose runs the OAuth connect path", c.ID)
	}
	steps, err := m.Diagnose(r.Context(), c.ID)
	if err != nil {
		return apiError(http.StatusInternalServerError, "diagnosing %s: %v", c.ID, err)
	}
	last := steps[len(steps)-1]
	ok = last.Name == oauthflow.StepAuthorizationURL && last.OK
	return writeAdmin(w, http.StatusOK, map[string]any{"connector": c.ID, "ok": ok, "steps": steps})
}

// adminPresets answers GET /mcpgate/presets.
func (a *App) adminPresets(w http.ResponseWriter, _ *http.Request) error {
	return writeAdmin(w, http.StatusOK, map[string]any{"presets": a.registry.Presets()})
}

// toolsAnswer is what the tools routes answer: the selection, with what
// the upstream lists now or what was just approved.
type toolsAnswer struct {
	Connector  string                      `json:"connector"`
	Selection  []connectors.SelectionView  `json:"selection"`
	Discovered []connectors.DiscoveredTool `json:"discovered,omitempty"`
	Approved   []string                    `json:"approved,omitempty"`
}

// adminTools answers GET /mcpgate/connectors/{id}/tools: the selection,
// with drift, and with ?discover=1 the upstream's tools now.
func (a *App) adminTools(w http.ResponseWriter, r *http.Request) error {
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	sel := a.registry.Snapshot().Selection(c.ID)
	out := toolsAnswer{Connector: c.ID, Selection: sel.View()}
	if d := r.URL.Query().Get("discover"); d == "1" || d == "true" {
		listed, err := a.upstreamTools(r, g, c)
		if err != nil {
			return err
		}
		out.Discovered = connectors.Discover(c, sel, listed)
	}
	return writeAdmin(w, http.StatusOK, out)
}

// upstreamTools lists the connector's tools at the upstream, with the
// credential of ?user= (or the shared or static one).
func (a *App) upstreamTools(r *http.Request, g *gateway.Gateway, c *connectors.Connector) ([]json.RawMessage, error) {
	if c.URL == nil {
		return nil, apiError(http.StatusBadRequest, "connector %s has no MCP server: it has no tools", c.ID)
	}
	user := r.URL.Query().Get("user")
	if _, consent, ok := g.OAuthFor(c.ID); ok && consent == oauthflow.PerUser && user == "" {
		return nil, apiError(http.StatusBadRequest, "connector %s has per-user consent: say whose credential to list with ?user=<id> (the CLI's --user)", c.ID)
	}
	tools, err := g.Mux().UpstreamTools(r.Context(), grants.Caller{ID: user}, c.ID)
	if cr, ok := errors.AsType[*mcpmux.ConsentRequired](err); ok {
		return nil, apiError(http.StatusConflict, "connector %s is not connected: %s", c.ID, cr.Message)
	}
	if err != nil {
		return nil, apiError(http.StatusBadGateway, "listing the tools of %s: %v", c.ID, err)
	}
	return tools, nil
}

// adminRegisterTools answers PUT /mcpgate/connectors/{id}/tools: it
// selects tools of the upstream's current list, pinning each definition.
// Only selected tools then enter the catalog.
func (a *App) adminRegisterTools(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Tools []connectors.Want `json:"tools"`
	}
	if err := readAdmin(r, &req); err != nil {
		return err
	}
	if err := checkWants(req.Tools); err != nil {
		return err
	}
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	listed, err := a.upstreamTools(r, g, c)
	if err != nil {
		return err
	}
	sel, err := a.registry.Select(r.Context(), c.ID, listed, req.Tools)
	if err != nil {
		return registryError(err)
	}
	a.recordAdmin("", c.ID, adminDetail(r, fmt.Sprintf("registered a selection of %d tools", len(sel.Tools))))
	return writeAdmin(w, http.StatusOK, toolsAnswer{Connector: c.ID, Selection: sel.View()})
}

// checkWants checks a selection request before any upstream is asked.
func checkWants(wants []connectors.Want) error {
	if wants == nil {
		return apiError(http.StatusBadRequest, `say which tools with {"tools": [{"name": …, "operation": "read"|"write"}]}`)
	}
	for _, w := range wants {
		if err := w.Validate(); err != nil {
			return apiError(http.StatusBadRequest, "%v", err)
		}
	}
	return nil
}

// adminApproveTools answers POST /mcpgate/connectors/{id}/tools/approve:
// each drifted tool named (all of them when none is) is pinned to its new
// definition and returns to the catalog.
func (a *App) adminApproveTools(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Tools []string `json:"tools,omitempty"`
	}
	if r.ContentLength != 0 {
		if err := readAdmin(r, &req); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	sel, names, err := a.registry.Approve(r.Context(), id, req.Tools)
	if err != nil {
		return registryError(err)
	}
	a.recordAdmin("", id, adminDetail(r, "approved the changed tools "+strings.Join(names, ", ")))
	return writeAdmin(w, http.StatusOK, toolsAnswer{Connector: id, Selection: sel.View(), Approved: names})
}

// adminGrants answers GET /mcpgate/grants?user=…&groups=…[&tool=c/name]:
// the effective decision for that caller on every connector, and on each
// tool that a selection, the config or a tool parameter names.
func (a *App) adminGrants(w http.ResponseWriter, r *http.Request) error {
	caller, asked, err := grantsQuery(r)
	if err != nil {
		return err
	}
	g := a.live.Current()
	for conn := range asked {
		if _, ok := g.Connector(conn); !ok {
			return apiError(http.StatusNotFound, "no connector %q", conn)
		}
	}
	view := a.policy.For(caller)
	return writeAdmin(w, http.StatusOK, map[string]any{
		"user": caller.ID, "groups": caller.Groups, "admin": view.IsAdmin(), "connectors": g.Explain(view, a.Grants, asked),
	})
}

// grantsQuery reads whose grants, and which tools besides the known ones,
// GET /mcpgate/grants asks about.
func grantsQuery(r *http.Request) (grants.Caller, map[string][]string, error) {
	q := r.URL.Query()
	caller := grants.Caller{ID: q.Get("user"), Groups: splitList(strings.Join(q["groups"], ","))}
	if caller.ID == "" {
		return caller, nil, apiError(http.StatusBadRequest, "say whose grants with ?user=<id> (the CLI's --user)")
	}
	asked := map[string][]string{}
	for _, t := range q["tool"] {
		conn, name, ok := strings.Cut(t, "/")
		if !ok || conn == "" || name == "" {
			return caller, nil, apiError(http.StatusBadRequest, "tool %q: say <connector>/<tool>", t)
		}
		asked[conn] = append(asked[conn], name)
	}
	return caller, asked, nil
}

// adminDetail describes an admin change for the audit log: what, through
// which route, from where. The admin endpoint knows no user; its address
// is what there is.
func adminDetail(r *http.Request, what string) string {
	return what + " (" + r.Method + " " + r.URL.Path + " from " + r.RemoteAddr + ")"
}

// adminAudit answers GET /mcpgate/audit?since=…&user=…&connector=…&limit=…
// with the newest events first.
func (a *App) adminAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := audit.ParseFilter(r.URL.Query(), time.Now())
	if err != nil {
		return apiError(http.StatusBadRequest, "%v", err)
	}
	events, err := a.auditQuery(r.Context(), f)
	if err != nil {
		return apiError(http.StatusInternalServerError, "reading the audit log: %v", err)
	}
	if events == nil {
		events = []audit.Event{}
	}
	return writeAdmin(w, http.StatusOK, map[string]any{"events": events})
}

// Interface guards
var (
	_ caddy.Module      = (*adminAPI)(nil)
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
