package web

import (
	"context"
	"net/http"
	"path"
	"strings"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// Options are one generation of the gateway, as the user's HTTP surface
// needs it.
type Options struct {
	// Mux serves the MCP endpoints, the connectors' statuses, and tells
	// which connectors exist. Required.
	Mux *mcpmux.Mux
	// Policy decides what each caller sees; nil allows nothing.
	Policy *grants.Policy
	// OAuth returns connector id's OAuth manager and consent, if the
	// connector uses OAuth; nil means none does.
	OAuth func(id string) (*oauthflow.Manager, oauthflow.Consent, bool)
	// Manager answers the OAuth callback and the client metadata
	// document; nil when no connector uses OAuth.
	Manager *oauthflow.Manager
	// PublicURL is the site's base URL: the Connectors page, where a
	// consent flow returns, is PublicURL+"/connectors".
	PublicURL string
	// ConnectTag returns the keyed tag a connect link made for user
	// carries in its for= parameter; nil means the empty tag.
	ConnectTag func(user string) string
	// Presets is the value of "presets" in GET /connectors/presets. It
	// must hold no secret.
	Presets any
	// CSRF refuses cross-site connects and disconnects; nil means Go's
	// default protection, which trusts the request's own origin only.
	CSRF *http.CrossOriginProtection
	// Approvals serves the approval pages; the zero value has no
	// service, and the pages answer 503 to approvers.
	Approvals Approvals
	// Drift returns the tools and prompts of connector id that changed
	// upstream and are hidden until an admin approves them, for the
	// admins' cards; nil shows none.
	Drift func(id string) (tools, prompts []string)
	// Logger receives the logs; nil discards them.
	Logger *zap.Logger
}

// Handler serves a site's mcpgate endpoints: /mcp, /connectors/{id}/mcp,
// the Connectors page and its JSON, connect and disconnect, the OAuth
// callback and the client metadata document. It knows the caller from
// the request's context (see WithCaller). The HTTP API paths,
// /connectors/{id}/api/…, are not its own: their host routes them first.
type Handler struct {
	o   Options
	mux *http.ServeMux
}

// endpoint answers a request from caller c, or returns the failure
// unwritten.
type endpoint func(w http.ResponseWriter, r *http.Request, c grants.Caller) error

// route is what a pattern serves, and whether it serves callers the
// gateway cannot tell (public), where c is the zero Caller.
type route struct {
	serve  endpoint
	public bool
}

// New builds a Handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.CSRF == nil {
		o.CSRF = http.NewCrossOriginProtection()
	}
	if o.ConnectTag == nil {
		o.ConnectTag = func(string) string { return "" }
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.routes()
	return h
}

// routes registers every endpoint. Each path has a method-less pattern
// too, which answers any other method with 405 and Allow; a GET pattern
// serves HEAD as well, so the callback refuses HEAD with a pattern of its
// own. Every endpoint but the client metadata needs a caller, checked
// before the method, as a path that names nothing is checked before the
// caller.
func (h *Handler) routes() {
	for pattern, rt := range map[string]route{
		"/mcp":                              {serve: h.serveMCP},
		"/connectors/{id}/mcp":              {serve: h.serveMCP},
		"GET /connectors":                   {serve: h.serveConnectors},
		"/connectors":                       {serve: refuse("GET, HEAD", "GET /connectors lists your connectors")},
		"GET /connectors/presets":           {serve: h.servePresets},
		"/connectors/presets":               {serve: refuse("GET, HEAD", "GET /connectors/presets lists the presets")},
		"POST /connectors/{id}/connect":     {serve: h.serveConnect},
		"/connectors/{id}/connect":          {serve: refuse("POST", "use POST")},
		"POST /connectors/{id}/disconnect":  {serve: h.serveDisconnect},
		"/connectors/{id}/disconnect":       {serve: refuse("POST", "use POST")},
		"GET /connect/callback":             {serve: h.serveCallback},
		"HEAD /connect/callback":            {serve: refuse("GET", "the OAuth callback takes GET")},
		"/connect/callback":                 {serve: refuse("GET", "the OAuth callback takes GET")},
		"GET /connect/client-metadata.json": {serve: h.serveClientMetadata, public: true},
		"/connect/client-metadata.json":     {serve: refuse("GET, HEAD", "GET the client metadata document"), public: true},
		"GET /approvals/{id}":               {serve: h.serveApproval},
		"/approvals/{id}":                   {serve: refuse("GET, HEAD", "GET /approvals/{id} shows an approval request")},
		"POST /approvals/{id}/approve":      {serve: h.serveDecide(true)},
		"/approvals/{id}/approve":           {serve: refuse("POST", "use POST")},
		"POST /approvals/{id}/deny":         {serve: h.serveDecide(false)},
		"/approvals/{id}/deny":              {serve: refuse("POST", "use POST")},
		"/approvals/":                       {serve: unknown, public: true},
		"/connectors/":                      {serve: unknown, public: true},
		"/":                                 {serve: unknown, public: true},
	} {
		h.mux.Handle(pattern, adapt(rt))
	}
}

// Owns reports whether path is one of the gateway's: a host passes every
// other request on.
func Owns(path string) bool {
	switch path {
	case "/mcp", "/connectors", "/connect/callback", "/connect/client-metadata.json":
		return true
	}
	return strings.HasPrefix(path, "/connectors/") || strings.HasPrefix(path, "/approvals/")
}

// ServeHTTP serves r, writing any failure with WriteError.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	WriteError(w, h.Serve(w, r))
}

// Serve serves r, and returns a failure without writing it, for a host
// such as Caddy to handle. When it returns nil, the answer is written.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) error {
	// ServeMux answers a path that is not clean (// or dot segments) with
	// a redirect to its clean form. The gateway's paths are exact: such a
	// path names nothing here, and must not be steered elsewhere.
	if !isClean(r.URL.EscapedPath()) {
		return notFound()
	}
	// The host's WithCaller made the request's exchange already, so that
	// an agent's call copies its request once, not twice.
	x, ok := r.Context().Value(exchangeKey{}).(*exchange)
	if !ok {
		x = new(exchange)
		r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	}
	x.failure = nil
	h.mux.ServeHTTP(w, r)
	return x.failure
}

// exchange is what one request carries between its host and the
// handler: who calls, which the host sets (WithCaller), and the
// endpoint's failure, which adapt leaves for Serve, unwritten.
type exchange struct {
	caller  grants.Caller
	failure error
}

// exchangeKey keys a request's *exchange in its context.
type exchangeKey struct{}

// adapt makes a route an http.Handler for the mux: it checks the caller
// unless the route is public, and hands the endpoint's failure back to
// Serve through the request's slot, unwritten.
func adapt(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, known := CallerFrom(r.Context())
		var err error
		switch {
		case strings.Contains(r.PathValue("id"), "/"):
			// An escaped slash (%2F) matched as part of an id, which no
			// connector id holds: the path names nothing.
			err = notFound()
		case known || rt.public:
			err = rt.serve(w, r, c)
		default:
			err = fail(http.StatusUnauthorized, "authentication is missing: the gateway could not tell who is calling")
		}
		if x, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
			x.failure = err
			return
		}
		WriteError(w, err)
	})
}

// isClean reports whether ServeMux would serve p as it is: rooted, with
// no empty or dot segment.
func isClean(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return strings.HasPrefix(p, "/") && c == p
}

// refuse is an endpoint that answers 405.
func refuse(allow, msg string) endpoint {
	return func(http.ResponseWriter, *http.Request, grants.Caller) error { return notAllowed(allow, msg) }
}

// unknown answers a path that names no endpoint, before anything else.
func unknown(http.ResponseWriter, *http.Request, grants.Caller) error { return notFound() }

// serveMCP serves /mcp, every granted connector, and
// /connectors/{id}/mcp, one of them. The mux answers an unknown connector
// as it answers one hidden from the caller.
func (h *Handler) serveMCP(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	h.o.Mux.ServeMCP(w, r, c, r.PathValue("id"))
	return nil
}

// WithCaller returns ctx carrying who calls: the host sets it once its
// authentication has told.
func WithCaller(ctx context.Context, c grants.Caller) context.Context {
	return context.WithValue(ctx, exchangeKey{}, &exchange{caller: c})
}

// CallerFrom returns the caller WithCaller set, and false when none was
// set or its id is empty.
func CallerFrom(ctx context.Context) (grants.Caller, bool) {
	x, ok := ctx.Value(exchangeKey{}).(*exchange)
	if !ok {
		return grants.Caller{}, false
	}
	return x.caller, x.caller.ID != ""
}
