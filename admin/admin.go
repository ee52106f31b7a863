// Package admin serves the mcpgate admin API: the connectors, their
// consent and tools, the presets, the effective grants and the audit log,
// as handlers that return their failures. The root mounts them on Caddy's
// admin endpoint under /mcpgate/; the CLI calls them. It knows nothing of
// Caddy.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// API is what the admin API acts on: the running config's parts. The
// host makes one per request from the config serving then, so a route
// never holds a part past a reload.
//
// The admin endpoint is privileged, so its answers may say that a
// connector does not exist (404), where the user's endpoints hide it.
// Its errors still never carry a secret: the host puts them in the
// response and in its log.
type API struct {
	// Registry holds the connectors and their tool selections.
	Registry *connectors.Registry
	// Live is the gateway serving now, with the grants it decides by.
	Live *gateway.Live
	// Audit records the admin's changes and answers queries.
	Audit Audit
	// Approvals returns the approval requests' service; nil, or a nil
	// service, until the store opens.
	Approvals func() *approvals.Service
}

// Audit is the audit log as the admin API uses it. Every route that
// changes something records it: the admin endpoint names no admin, so the
// log is what tells afterwards who did what from where.
type Audit interface {
	// AdminChange records an admin's change to the runtime configuration.
	// user is the user the change was for (per-user consent), or empty.
	AdminChange(user, connector, detail string)
	// Query returns the events that f selects, newest first.
	Query(ctx context.Context, f audit.Filter) ([]audit.Event, error)
}

// Route is one route of the admin API.
type Route struct {
	// Pattern is an http.ServeMux pattern, with its method.
	Pattern string
	// Serve answers a request, or returns its failure unwritten: an
	// *Error with its status, or any other error for a 500.
	Serve func(*API, http.ResponseWriter, *http.Request) error
}

// Routes are the admin API's routes. Each pattern names its method and a
// path under /mcpgate/, never a catch-all, so that mounted on Caddy's
// admin endpoint they leave its own routes alone.
var Routes = []Route{
	{"GET /mcpgate/connectors", (*API).listConnectors},
	{"POST /mcpgate/connectors", (*API).addConnector},
	{"GET /mcpgate/connectors/{id}", (*API).showConnector},
	{"PATCH /mcpgate/connectors/{id}", (*API).updateConnector},
	{"DELETE /mcpgate/connectors/{id}", (*API).removeConnector},
	{"POST /mcpgate/connectors/{id}/connect", (*API).connect},
	{"POST /mcpgate/connectors/{id}/disconnect", (*API).disconnect},
	{"POST /mcpgate/connectors/{id}/reconnect", (*API).reconnect},
	{"GET /mcpgate/connectors/{id}/tools", (*API).tools},
	{"PUT /mcpgate/connectors/{id}/tools", (*API).registerTools},
	{"POST /mcpgate/connectors/{id}/tools/approve", (*API).approveTools},
	{"GET /mcpgate/connectors/{id}/diagnose", (*API).diagnose},
	{"GET /mcpgate/presets", (*API).presets},
	{"GET /mcpgate/tools/search", (*API).searchTools},
	{"GET /mcpgate/grants", (*API).grants},
	{"POST /mcpgate/grants", (*API).addGrant},
	{"DELETE /mcpgate/grants/{id}", (*API).removeGrant},
	{"GET /mcpgate/audit", (*API).audit},
	{"GET /mcpgate/approvals", (*API).listApprovals},
	{"POST /mcpgate/approvals/{id}/approve", (*API).approve},
	{"POST /mcpgate/approvals/{id}/deny", (*API).deny},
}

// Error is a failure of the admin API, with the status to answer it with.
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errorf is an *Error of status.
func errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// registryStatuses answer the registry's errors by kind: a conflict
// (an id taken, a config connector the admin API may not change) is 409,
// and an upstream that failed while the registry asked it is 502, the
// gateway's status for a peer's fault.
var registryStatuses = map[connectors.ErrorKind]int{
	connectors.KindInvalid:  http.StatusBadRequest,
	connectors.KindNotFound: http.StatusNotFound,
	connectors.KindConflict: http.StatusConflict,
	connectors.KindUpstream: http.StatusBadGateway,
	connectors.KindStorage:  http.StatusInternalServerError,
}

// fromRegistry is the answer to a registry error: its status by kind. An
// *Error that a Remove's prepare returned keeps its own.
func fromRegistry(err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	status := http.StatusInternalServerError
	if re, ok := errors.AsType[*connectors.Error](err); ok {
		status = registryStatuses[re.Kind]
	}
	return &Error{Status: status, Err: err}
}

// maxBody caps an admin request's body. A connector or a selection is a
// few kilobytes; the cap keeps a client from making the server hold an
// arbitrary body in memory.
const maxBody = 1 << 20

// write writes v as the JSON answer, indented for people at a terminal.
func write(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// read decodes the request's JSON body into v, strictly: unknown,
// duplicate and case-variant members and trailing data are errors. A
// misspelt member would otherwise leave its field at the default, which
// can be looser than meant: a selection whose "operation" is misspelt
// would take the upstream's readOnlyHint. A duplicate could read one way
// here and another in a tool that checked the body first.
func read(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := strictjson.Unmarshal(body, v, true); err != nil {
		return errorf(http.StatusBadRequest, "the body is not valid JSON for this route: %v", err)
	}
	return nil
}

// readBody reads the request's body, up to maxBody.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

// lookup returns connector id of the gateway serving now, or a 404.
func (api *API) lookup(r *http.Request) (*gateway.Gateway, *connectors.Connector, error) {
	id := r.PathValue("id")
	g := api.Live.Current()
	c, ok := g.Connector(id)
	if !ok {
		return nil, nil, errorf(http.StatusNotFound, "no connector %q", id)
	}
	return g, c, nil
}

// addedConnector answers POST /mcpgate/connectors: the connector, and
// where to consent to it.
type addedConnector struct {
	gateway.ConnectorView
	// Grant is client_credentials for a connector that gets its token
	// without consent, which has no connect URL: its first call fetches
	// the token.
	Grant        string `json:"grant,omitempty"`
	ConnectURL   string `json:"connect_url,omitempty"`
	AuthURL      string `json:"auth_url,omitempty"`
	ConsentError string `json:"consent_error,omitempty"`
}

// addConnector answers POST /mcpgate/connectors: the registry checks
// the connector as a config connector is checked, keeps it, and the
// gateway serves it at once.
func (api *API) addConnector(w http.ResponseWriter, r *http.Request) error {
	var req connectors.AddRequest
	if err := read(r, &req); err != nil {
		return err
	}
	e, err := api.Registry.Add(r.Context(), req)
	if err != nil {
		return fromRegistry(err)
	}
	api.Audit.AdminChange("", e.Config.ID, adminDetail(r, "added the runtime connector"))
	return write(w, http.StatusCreated, api.added(r.Context(), e.Config.ID))
}

// added shows a connector just added, with where to consent: for shared
// consent, a flow is started for the admin at once, unless it was added
// disabled. A flow that fails to start is reported beside the connector,
// not as the request's failure: the connector is stored and served by
// then, and an error status would say it was not added.
func (api *API) added(ctx context.Context, id string) addedConnector {
	g := api.Live.Current()
	c, _ := g.Connector(id)
	out := addedConnector{ConnectorView: g.View(ctx, api.Registry.Snapshot(), c)}
	if m, consent, ok := g.OAuthFor(id); ok && !c.Disabled {
		if m.Grant(id) == oauthflow.GrantClientCredentials {
			out.Grant = oauthflow.GrantClientCredentials
			return out
		}
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

// removeConnector answers DELETE /mcpgate/connectors/{id}: it
// revokes the connector's tokens, forgets its records and stops serving
// it. The grants go first, inside the registry's removal: once the
// connector is gone no OAuth manager knows it, and its grants could be
// neither revoked (RFC 7009) nor deleted. Its last uses go too, so that a
// connector added later under the id starts with none. A purge that fails
// keeps the connector, so that the admin can try again.
func (api *API) removeConnector(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var revs []oauthflow.Revocation
	err := api.Registry.Remove(r.Context(), id, func(connectors.Entry) (err error) {
		g := api.Live.Current()
		if m, _, ok := g.OAuthFor(id); ok {
			if revs, err = m.Remove(r.Context(), id, "the connector was removed"); err != nil {
				return errorf(http.StatusInternalServerError, "revoking the tokens of %s: %v", id, err)
			}
		}
		if err := g.ForgetUsage(r.Context(), id); err != nil {
			return errorf(http.StatusInternalServerError, "%v", err)
		}
		return nil
	})
	if err != nil {
		return fromRegistry(err)
	}
	api.Audit.AdminChange("", id, adminDetail(r, "removed the runtime connector"))
	if revs == nil {
		revs = []oauthflow.Revocation{} // [] rather than null: there were none
	}
	return write(w, http.StatusOK, map[string]any{"removed": id, "revocations": revs})
}

// consentTarget is what a consent route acts on: a connector's OAuth
// manager, the connector, and the user, ?user=, needed under per-user
// consent.
type consentTarget struct {
	m        *oauthflow.Manager
	id, user string
	disabled bool
}

// oauthTarget returns the consent target a route names.
func (api *API) oauthTarget(r *http.Request) (consentTarget, error) {
	g, c, err := api.lookup(r)
	if err != nil {
		return consentTarget{}, err
	}
	m, consent, ok := g.OAuthFor(c.ID)
	if !ok {
		return consentTarget{}, errorf(http.StatusBadRequest, "connector %s does not use OAuth: there is nothing to connect", c.ID)
	}
	user := r.URL.Query().Get("user")
	if consent == oauthflow.PerUser && user == "" {
		return consentTarget{}, errorf(http.StatusBadRequest, "connector %s has per-user consent: say whose with ?user=<id> (the CLI's --user)", c.ID)
	}
	return consentTarget{m, c.ID, user, c.Disabled}, nil
}

// startable refuses a new consent for a disabled connector: it would
// store fresh tokens for a connector that an admin turned off. A
// disconnect stays allowed.
func (t consentTarget) startable() error {
	if t.disabled {
		return errorf(http.StatusConflict, "connector %s is disabled: enable it first (caddy mcpgate connectors enable %s), then connect it", t.id, t.id)
	}
	return nil
}

// start begins a consent and returns its authorization URL.
func (t consentTarget) start(r *http.Request) (string, error) {
	authURL, err := t.m.Start(r.Context(), t.id, t.user, "")
	if errors.Is(err, oauthflow.ErrNoConsent) {
		return "", errorf(http.StatusConflict, "%v: its token is fetched at its first call; a disconnect revokes it and the next call fetches another", err)
	}
	if err != nil {
		return "", errorf(http.StatusBadGateway, "starting consent for %s: %v", t.id, err)
	}
	return authURL, nil
}

// disconnect purges and revokes the credential.
func (t consentTarget) disconnect(r *http.Request, reason string) (oauthflow.Revocation, error) {
	rev, err := t.m.Disconnect(r.Context(), t.id, t.user, reason)
	if err != nil {
		return rev, errorf(http.StatusInternalServerError, "disconnecting %s: %v", t.id, err)
	}
	return rev, nil
}

// connect answers POST /mcpgate/connectors/{id}/connect with the
// authorization URL of a new consent. Under shared consent the flow is
// bound to no user: whoever the admin hands the URL to consents for
// everyone. Under per-user consent it is bound to ?user=, who must
// complete it signed in as that user, so that an admin cannot put their
// own provider account behind another user's calls.
func (api *API) connect(w http.ResponseWriter, r *http.Request) error {
	t, err := api.oauthTarget(r)
	if err == nil {
		err = t.startable()
	}
	if err != nil {
		return err
	}
	authURL, err := t.start(r)
	if err != nil {
		return err
	}
	api.Audit.AdminChange(t.user, t.id, adminDetail(r, "started a consent"))
	return write(w, http.StatusOK, map[string]string{"auth_url": authURL})
}

// disconnect answers POST /mcpgate/connectors/{id}/disconnect.
func (api *API) disconnect(w http.ResponseWriter, r *http.Request) error {
	t, err := api.oauthTarget(r)
	if err != nil {
		return err
	}
	rev, err := t.disconnect(r, "disconnected by an admin")
	if err != nil {
		return err
	}
	api.Audit.AdminChange(t.user, t.id, adminDetail(r, "disconnected"))
	return write(w, http.StatusOK, rev)
}

// reconnect answers POST /mcpgate/connectors/{id}/reconnect: a
// disconnect, then a new consent. The old grant is revoked first, so that
// it is gone even if the new consent is never completed. A disabled
// connector is refused before anything: its tokens are kept for when it
// is enabled again.
func (api *API) reconnect(w http.ResponseWriter, r *http.Request) error {
	t, err := api.oauthTarget(r)
	if err == nil {
		err = t.startable()
	}
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
	api.Audit.AdminChange(t.user, t.id, adminDetail(r, "reconnected"))
	return write(w, http.StatusOK, map[string]any{"auth_url": authURL, "revocation": rev})
}

// diagnose answers GET /mcpgate/connectors/{id}/diagnose. It is ok
// when every step ran and the last, the authorization URL, worked: the
// steps stop at the first failure, so a last step that is not the
// authorization URL is one that failed. A failing step is still 200: the
// diagnosis itself succeeded.
func (api *API) diagnose(w http.ResponseWriter, r *http.Request) error {
	g, c, err := api.lookup(r)
	if err != nil {
		return err
	}
	m, _, ok := g.OAuthFor(c.ID)
	if !ok {
		return errorf(http.StatusBadRequest, "connector %s does not use OAuth: diagnose runs the OAuth connect path", c.ID)
	}
	steps, err := m.Diagnose(r.Context(), c.ID)
	if err != nil {
		return errorf(http.StatusInternalServerError, "diagnosing %s: %v", c.ID, err)
	}
	last := steps[len(steps)-1]
	ok = last.Name == oauthflow.StepAuthorizationURL && last.OK
	return write(w, http.StatusOK, map[string]any{"connector": c.ID, "ok": ok, "steps": steps})
}

// presets answers GET /mcpgate/presets.
func (api *API) presets(w http.ResponseWriter, _ *http.Request) error {
	return write(w, http.StatusOK, map[string]any{"presets": api.Registry.Presets()})
}

// toolsAnswer is what the tools routes answer: the selection, with what
// the upstream lists now or what was just approved.
type toolsAnswer struct {
	Connector  string                      `json:"connector"`
	Selection  []connectors.SelectionView  `json:"selection"`
	Discovered []connectors.DiscoveredTool `json:"discovered,omitempty"`
	Approved   []string                    `json:"approved,omitempty"`
	// Prompts is the selection's prompt part, absent when it has none;
	// DiscoveredPrompts and ApprovedPrompts are as for tools.
	Prompts           []connectors.PromptView       `json:"prompts,omitempty"`
	DiscoveredPrompts []connectors.DiscoveredPrompt `json:"discovered_prompts,omitempty"`
	ApprovedPrompts   []string                      `json:"approved_prompts,omitempty"`
}

// selectionAnswer is the tools routes' answer for connector id's
// selection sel.
func selectionAnswer(id string, sel *connectors.Selection) toolsAnswer {
	return toolsAnswer{Connector: id, Selection: sel.View(), Prompts: sel.PromptsView()}
}

// tools answers GET /mcpgate/connectors/{id}/tools: the selection,
// with drift, and with ?discover=1 the upstream's tools now.
func (api *API) tools(w http.ResponseWriter, r *http.Request) error {
	g, c, err := api.lookup(r)
	if err != nil {
		return err
	}
	sel := api.Registry.Snapshot().Selection(c.ID)
	out := selectionAnswer(c.ID, sel)
	if d := r.URL.Query().Get("discover"); d == "1" || d == "true" {
		listed, err := api.upstreamTools(r, g, c)
		if err != nil {
			return err
		}
		prompts, err := api.upstreamList(r, g, c, "prompts", g.Mux().UpstreamPrompts)
		if err != nil {
			return err
		}
		out.Discovered, out.DiscoveredPrompts = connectors.Discover(c, sel, listed), connectors.DiscoverPrompts(sel, prompts)
	}
	return write(w, http.StatusOK, out)
}

// upstreamTools lists the connector's tools at the upstream, with the
// credential of ?user= (or the shared or static one).
func (api *API) upstreamTools(r *http.Request, g *gateway.Gateway, c *connectors.Connector) ([]json.RawMessage, error) {
	return api.upstreamList(r, g, c, "tools", g.Mux().UpstreamTools)
}

// upstreamList lists the connector's items of one kind (what) at the
// upstream with list, with the credential of ?user= (or the shared or
// static one).
func (api *API) upstreamList(r *http.Request, g *gateway.Gateway, c *connectors.Connector, what string,
	list func(context.Context, grants.Caller, string) ([]json.RawMessage, error)) ([]json.RawMessage, error) {
	if c.URL == nil {
		return nil, errorf(http.StatusBadRequest, "connector %s has no MCP server: it has no %s", c.ID, what)
	}
	user := r.URL.Query().Get("user")
	if _, consent, ok := g.OAuthFor(c.ID); ok && consent == oauthflow.PerUser && user == "" {
		return nil, errorf(http.StatusBadRequest, "connector %s has per-user consent: say whose credential to list with ?user=<id> (the CLI's --user)", c.ID)
	}
	items, err := list(r.Context(), grants.Caller{ID: user}, c.ID)
	// 409: the request is right, but the connector's state refuses it
	// until someone consents; 502 is for an upstream that failed.
	if cr, ok := errors.AsType[*mcpmux.ConsentRequired](err); ok {
		return nil, errorf(http.StatusConflict, "connector %s is not connected: %s", c.ID, cr.Message)
	}
	if err != nil {
		return nil, errorf(http.StatusBadGateway, "listing the %s of %s: %v", what, c.ID, err)
	}
	return items, nil
}

// registerTools answers PUT /mcpgate/connectors/{id}/tools: it
// selects tools of the upstream's current list, and with "prompts"
// prompts too, pinning each definition. Only selected items then enter
// the catalog. The pin is the defence against an item whose description,
// title, annotations or schema changes after it was approved (tool
// poisoning, a "rug pull"): a changed item leaves the catalog until an
// admin approves it again.
func (api *API) registerTools(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Tools   []connectors.Want `json:"tools"`
		Prompts []connectors.Want `json:"prompts"`
	}
	if err := read(r, &req); err != nil {
		return err
	}
	if err := checkWants(req.Tools, req.Prompts); err != nil {
		return err
	}
	g, c, err := api.lookup(r)
	if err != nil {
		return err
	}
	q := connectors.SelectionRequest{Tools: req.Tools, Prompts: req.Prompts}
	if q.ListedTools, err = api.upstreamTools(r, g, c); err != nil {
		return err
	}
	if req.Prompts != nil {
		if q.ListedPrompts, err = api.upstreamList(r, g, c, "prompts", g.Mux().UpstreamPrompts); err != nil {
			return err
		}
	}
	sel, err := api.Registry.SelectItems(r.Context(), c.ID, q)
	if err != nil {
		return fromRegistry(err)
	}
	what := fmt.Sprintf("registered a selection of %d tools", len(sel.Tools))
	if sel.Prompts != nil {
		what += fmt.Sprintf(" and %d prompts", len(sel.Prompts))
	}
	api.Audit.AdminChange("", c.ID, adminDetail(r, what))
	return write(w, http.StatusOK, selectionAnswer(c.ID, sel))
}

// checkWants checks a selection request before any upstream is asked, so
// that a malformed one costs no upstream call and no credential use.
func checkWants(tools, prompts []connectors.Want) error {
	if tools == nil {
		return errorf(http.StatusBadRequest, `say which tools with {"tools": [{"name": …, "operation": "read"|"write"}]} (and optionally {"prompts": [{"name": …}]})`)
	}
	if err := (connectors.SelectionRequest{Tools: tools, Prompts: prompts}).Validate(); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return nil
}

// approveTools answers POST /mcpgate/connectors/{id}/tools/approve:
// each drifted tool and prompt named (all of them when none is) is
// pinned to its new definition and returns to the catalog.
func (api *API) approveTools(w http.ResponseWriter, r *http.Request) error {
	var req connectors.Approval
	// No body approves every drifted item; a chunked body (length -1) is
	// read like any other.
	if r.ContentLength != 0 {
		if err := read(r, &req); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	sel, done, err := api.Registry.ApproveItems(r.Context(), id, req)
	if err != nil {
		return fromRegistry(err)
	}
	what := "approved the changed tools " + strings.Join(done.Tools, ", ")
	if len(done.Prompts) > 0 {
		what += " and prompts " + strings.Join(done.Prompts, ", ")
	}
	api.Audit.AdminChange("", id, adminDetail(r, what))
	out := selectionAnswer(id, sel)
	out.Approved, out.ApprovedPrompts = done.Tools, done.Prompts
	return write(w, http.StatusOK, out)
}

// adminDetail describes an admin change for the audit log: what, through
// which route, from where. The admin endpoint knows no user; its address
// is what there is.
func adminDetail(r *http.Request, what string) string {
	return what + " (" + r.Method + " " + r.URL.Path + " from " + r.RemoteAddr + ")"
}

// audit answers GET /mcpgate/audit?since=…&user=…&connector=…&limit=…
// with the newest events first.
func (api *API) audit(w http.ResponseWriter, r *http.Request) error {
	f, err := audit.ParseFilter(r.URL.Query(), time.Now())
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	events, err := api.Audit.Query(r.Context(), f)
	if err != nil {
		return errorf(http.StatusInternalServerError, "reading the audit log: %v", err)
	}
	if events == nil {
		events = []audit.Event{} // [] rather than null, for clients that index it
	}
	return write(w, http.StatusOK, map[string]any{"events": events})
}
