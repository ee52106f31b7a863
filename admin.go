package mcpgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
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

// adminConnector is a connector as the admin API shows it: no secret.
type adminConnector struct {
	ID string `json:"id"`
	// Source is "config" (read-only here) or "runtime".
	Source string `json:"source"`
	URL    string `json:"url,omitempty"`
	// API is the base URL of its HTTP API, if it has one.
	API string `json:"api,omitempty"`
	// Auth is none, bearer, header or oauth.
	Auth         string `json:"auth"`
	Consent      string `json:"consent,omitempty"`
	Registration string `json:"registration,omitempty"`
	Preset       string `json:"preset,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
	// Connection is the shared-consent connection; per-user ones are each
	// user's, on the Connectors page.
	Connection *connectors.Connection `json:"connection,omitempty"`
	// Tools summarizes the admin's tool selection, if there is one.
	Tools *toolsSummary `json:"tools,omitempty"`
}

// toolsSummary is the size of a selection and the tools that drifted.
type toolsSummary struct {
	Registered int      `json:"registered"`
	Drifted    []string `json:"drifted,omitempty"`
}

// view shows connector c of g.
func (a *App) view(ctx context.Context, g *gateway, c *connectors.Connector) adminConnector {
	v := adminConnector{ID: c.ID, Source: "config", Auth: string(c.Auth.Type)}
	if v.Auth == "" {
		v.Auth = "none"
	}
	if c.URL != nil {
		u := *c.URL
		if u.RawQuery != "" {
			u.RawQuery = "redacted" // a query may carry a key
		}
		v.URL = u.String()
	}
	if c.API != nil {
		v.API = c.API.String()
	}
	if rc, ok := g.runtime[c.ID]; ok {
		v.Source, v.Preset, v.Title, v.Description = "runtime", rc.Preset, rc.Title, rc.Description
	}
	if cfg, ok := g.oauthConfig(c.ID); ok {
		v.Consent, v.Registration = string(cfg.Consent), cfg.Registration
		if v.Registration == "" {
			v.Registration = "auto"
		}
		if cfg.Consent == oauthflow.Shared && g.manager != nil {
			conn := g.manager.Connection(ctx, c.ID, "")
			v.Connection = &conn
		}
	}
	if reg, err := a.toolRegistry(ctx, c.ID); err == nil && reg != nil {
		v.Tools = &toolsSummary{Registered: len(reg.Tools)}
		for _, name := range slices.Sorted(maps.Keys(reg.Tools)) {
			if reg.Tools[name].Drift != nil {
				v.Tools.Drifted = append(v.Tools.Drifted, name)
			}
		}
	}
	return v
}

// lookup returns connector id of the gateway serving now, or a 404.
func (a *App) lookup(r *http.Request) (*gateway, *connectors.Connector, error) {
	id := r.PathValue("id")
	g := a.gateway()
	c, _, ok := g.connector(id)
	if !ok {
		return nil, nil, apiError(http.StatusNotFound, "no connector %q", id)
	}
	return g, c, nil
}

// adminListConnectors answers GET /mcpgate/connectors.
func (a *App) adminListConnectors(w http.ResponseWriter, r *http.Request) error {
	g := a.gateway()
	out := make([]adminConnector, len(g.conns))
	for i, c := range g.conns {
		out[i] = a.view(r.Context(), g, c)
	}
	return writeAdmin(w, http.StatusOK, map[string]any{"connectors": out})
}

// adminShowConnector answers GET /mcpgate/connectors/{id}.
func (a *App) adminShowConnector(w http.ResponseWriter, r *http.Request) error {
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	return writeAdmin(w, http.StatusOK, a.view(r.Context(), g, c))
}

// addConnectorRequest is the body of POST /mcpgate/connectors: a
// connector as in the config, taken literally (no placeholders).
type addConnectorRequest struct {
	ConnectorConfig
	// MatchPreset, true by default, lets a URL that matches a preset take
	// its OAuth client, title and description, unless the request gives
	// its own.
	MatchPreset *bool  `json:"match_preset,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

// adminAddConnector answers POST /mcpgate/connectors: it validates the
// connector as a config connector is validated, keeps it in the store and
// serves it at once.
func (a *App) adminAddConnector(w http.ResponseWriter, r *http.Request) error {
	var req addConnectorRequest
	if err := readAdmin(r, &req); err != nil {
		return err
	}
	if err := connectors.ValidateID(req.ID); err != nil {
		return apiError(http.StatusBadRequest, "%v", err)
	}
	rc := runtimeConnector{Config: req.ConnectorConfig, Title: req.Title, Description: req.Description, Created: time.Now().UTC()}
	if req.MatchPreset == nil || *req.MatchPreset {
		if p, ok := a.matchPreset(req.URL); ok {
			rc.applyPreset(p)
		}
	}
	a.live.mu.Lock()
	defer a.live.mu.Unlock()
	g := a.gateway()
	if _, runtime, exists := g.connector(req.ID); exists {
		if runtime {
			return apiError(http.StatusConflict, "connector %q already exists; remove it first to replace it", req.ID)
		}
		return apiError(http.StatusConflict, "connector %q is defined in the config, which the admin API cannot change", req.ID)
	}
	if _, _, err := a.runtimeConnector(caddy.NewEmptyReplacer(), rc.Config); err != nil {
		return apiError(http.StatusBadRequest, "%v", err)
	}
	raw, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.vault.sealed.Put(ctx, runtimePrefix+rc.Config.ID, raw, 0); err != nil {
		return apiError(http.StatusInternalServerError, "storing connector %s: %v", rc.Config.ID, err)
	}
	runtime := maps.Clone(g.runtime)
	if runtime == nil {
		runtime = map[string]runtimeConnector{}
	}
	runtime[rc.Config.ID] = rc
	if err := a.rebuild(runtime); err != nil {
		_ = a.vault.sealed.Delete(ctx, runtimePrefix+rc.Config.ID)
		return apiError(http.StatusBadRequest, "%v", err)
	}
	a.recordAdmin("", rc.Config.ID, adminDetail(r, "added the runtime connector"))
	g = a.gateway()
	c, _, _ := g.connector(rc.Config.ID)
	out := addedConnector{adminConnector: a.view(ctx, g, c)}
	if cfg, ok := g.oauthConfig(c.ID); ok {
		out.ConnectURL = a.connectURL(c.ID)
		if cfg.Consent == oauthflow.Shared {
			out.AuthURL, err = g.manager.Start(ctx, c.ID, "", "")
			if err != nil {
				out.ConsentError = err.Error() + "; run diagnose"
			}
		}
	}
	return writeAdmin(w, http.StatusCreated, out)
}

// addedConnector answers POST /mcpgate/connectors: the connector, and
// where to consent to it.
type addedConnector struct {
	adminConnector
	ConnectURL   string `json:"connect_url,omitempty"`
	AuthURL      string `json:"auth_url,omitempty"`
	ConsentError string `json:"consent_error,omitempty"`
}

// applyPreset takes p's client, title and description where the
// connector has none of its own.
func (rc *runtimeConnector) applyPreset(p preset) {
	rc.Preset = p.ID
	if rc.Title == "" {
		rc.Title = p.Title
	}
	if rc.Description == "" {
		rc.Description = p.Description
	}
	cfg := &rc.Config
	if cfg.Auth == nil {
		cfg.Auth = &AuthConfig{Type: string(connectors.AuthOAuth)}
	}
	if cfg.Auth.Type != string(connectors.AuthOAuth) || p.clientID == "" {
		return
	}
	if cfg.Auth.OAuth == nil {
		cfg.Auth.OAuth = new(OAuthConfig)
	}
	if cfg.Auth.OAuth.ClientID == "" {
		cfg.Auth.OAuth.ClientID, cfg.Auth.OAuth.ClientSecret = p.clientID, p.clientSecret
	}
}

// adminRemoveConnector answers DELETE /mcpgate/connectors/{id}: it
// revokes the connector's tokens, forgets its records and stops serving
// it.
func (a *App) adminRemoveConnector(w http.ResponseWriter, r *http.Request) error {
	a.live.mu.Lock()
	defer a.live.mu.Unlock()
	g, c, err := a.lookup(r)
	if err != nil {
		return err
	}
	if _, runtime := g.runtime[c.ID]; !runtime {
		return apiError(http.StatusConflict, "connector %q is defined in the config, which the admin API cannot change", c.ID)
	}
	ctx := r.Context()
	var revs []oauthflow.Revocation
	if _, ok := g.oauthConfig(c.ID); ok {
		if revs, err = g.manager.Remove(ctx, c.ID, "the connector was removed"); err != nil {
			return apiError(http.StatusInternalServerError, "%v", err)
		}
	}
	if err := a.vault.sealed.Delete(ctx, runtimePrefix+c.ID); err != nil {
		return apiError(http.StatusInternalServerError, "removing connector %s: %v", c.ID, err)
	}
	if err := a.putToolRegistry(ctx, c.ID, nil); err != nil {
		return apiError(http.StatusInternalServerError, "removing the tool selection of %s: %v", c.ID, err)
	}
	runtime := maps.Clone(g.runtime)
	delete(runtime, c.ID)
	if err := a.rebuild(runtime); err != nil {
		return err
	}
	a.recordAdmin("", c.ID, adminDetail(r, "removed the runtime connector"))
	return writeAdmin(w, http.StatusOK, map[string]any{"removed": c.ID, "revocations": revocationViews(revs)})
}

// revocationView is a Revocation in JSON.
type revocationView struct {
	Attempted bool   `json:"attempted"`
	Revoked   bool   `json:"revoked"`
	Retrying  bool   `json:"retrying,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

func revocationViews(revs []oauthflow.Revocation) []revocationView {
	out := make([]revocationView, len(revs))
	for i, r := range revs {
		out[i] = revocationView(r)
	}
	return out
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
	m, consent, ok := g.oauthFor(c.ID)
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
func (t consentTarget) disconnect(r *http.Request, reason string) (revocationView, error) {
	rev, err := t.m.Disconnect(r.Context(), t.id, t.user, reason)
	if err != nil {
		return revocationView{}, apiError(http.StatusInternalServerError, "%v", err)
	}
	return revocationView(rev), nil
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
	m, _, ok := g.oauthFor(c.ID)
	if !ok {
		return apiError(http.StatusBadRequest, "connector %s does not use OAuth: diagnose runs the OAuth connect path", c.ID)
	}
	steps, err := m.Diagnose(r.Context(), c.ID)
	if err != nil {
		return apiError(http.StatusInternalServerError, "%v", err)
	}
	last := steps[len(steps)-1]
	ok = last.Name == oauthflow.StepAuthorizationURL && last.OK
	return writeAdmin(w, http.StatusOK, map[string]any{"connector": c.ID, "ok": ok, "steps": steps})
}

// adminPresets answers GET /mcpgate/presets.
func (a *App) adminPresets(w http.ResponseWriter, _ *http.Request) error {
	return writeAdmin(w, http.StatusOK, map[string]any{"presets": a.presetViews()})
}

// presetViews shows every preset, without secrets.
func (a *App) presetViews() []presetView {
	out := make([]presetView, len(a.presets))
	for i, p := range a.presets {
		out[i] = p.view()
	}
	return out
}

// grantDecision is the decision on one tool for one caller.
type grantDecision struct {
	Tool      string               `json:"tool"`
	Operation connectors.Operation `json:"operation"`
	Allowed   bool                 `json:"allowed"`
	// Rule is the 1-based index of the grant that allowed it, and Grant
	// that grant; both are absent when the tool is denied.
	Rule  int          `json:"rule,omitempty"`
	Grant *GrantConfig `json:"grant,omitempty"`
}

// grantConnector is what a caller may do with one connector.
type grantConnector struct {
	ID string `json:"id"`
	// Visible: some grant names the connector, so the caller sees it.
	Visible bool `json:"visible"`
	// Access: some grant could allow at least one of its items.
	Access bool            `json:"access"`
	Tools  []grantDecision `json:"tools,omitempty"`
}

// adminGrants answers GET /mcpgate/grants?user=…&groups=…[&tool=c/name]:
// the effective decision for that caller on every connector, and on each
// tool that a selection, the config or a tool parameter names.
func (a *App) adminGrants(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	caller := grants.Caller{ID: q.Get("user")}
	if caller.ID == "" {
		return apiError(http.StatusBadRequest, "say whose grants with ?user=<id> (the CLI's --user)")
	}
	caller.Groups = splitList(strings.Join(q["groups"], ","))
	asked := map[string][]string{}
	for _, t := range q["tool"] {
		conn, name, ok := strings.Cut(t, "/")
		if !ok || conn == "" || name == "" {
			return apiError(http.StatusBadRequest, "tool %q: say <connector>/<tool>", t)
		}
		asked[conn] = append(asked[conn], name)
	}
	view := a.policy.For(caller)
	g := a.gateway()
	out := make([]grantConnector, 0, len(g.conns))
	for _, c := range g.conns {
		gc := grantConnector{ID: c.ID, Visible: view.Visible(c.ID), Access: view.HasItems(c.ID)}
		names := slices.Clone(c.Tools.Allow)
		names = append(names, asked[c.ID]...)
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			op := c.Tools.Operation(name, false)
			d := view.Decide(grants.Tools, c.ID, name, op == connectors.Read)
			gd := grantDecision{Tool: name, Operation: op, Allowed: d.Allowed, Rule: d.Rule}
			if d.Allowed && d.Rule <= len(a.Grants) {
				gd.Grant = &a.Grants[d.Rule-1]
			}
			gc.Tools = append(gc.Tools, gd)
		}
		out = append(out, gc)
	}
	for conn := range asked {
		if _, _, ok := g.connector(conn); !ok {
			return apiError(http.StatusNotFound, "no connector %q", conn)
		}
	}
	return writeAdmin(w, http.StatusOK, map[string]any{
		"user": caller.ID, "groups": caller.Groups, "admin": view.IsAdmin(), "connectors": out,
	})
}

// validToolPattern checks a selection entry, a tool name or a glob in the
// syntax of path.Match.
func validToolPattern(p string) error {
	if p == "" {
		return errors.New("a tool name is empty")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("tool pattern %q is not a valid glob: %v", p, err)
	}
	return nil
}

// adminDetail describes an admin change for the audit log: what, through
// which route, from where. The admin endpoint knows no user; its address
// is what there is.
func adminDetail(r *http.Request, what string) string {
	return what + " (" + r.Method + " " + r.URL.Path + " from " + r.RemoteAddr + ")"
}

// adminAudit answers GET /mcpgate/audit?since=…&user=…&connector=…&limit=…
// with the newest events first. since is RFC 3339 or a duration back from
// now, such as 1h.
func (a *App) adminAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := audit.Filter{User: q.Get("user"), Connector: q.Get("connector"), Kind: audit.Kind(q.Get("kind"))}
	if s := q.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			f.Since = time.Now().Add(-d)
		} else if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return apiError(http.StatusBadRequest, "since %q is neither an RFC 3339 time nor a positive duration such as 1h", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return apiError(http.StatusBadRequest, "limit %q is not a positive number", s)
		}
		f.Limit = n
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
