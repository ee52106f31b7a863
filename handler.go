package mcpgate

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/httpapi"
	"github.com/mcpgate/caddy-mcpgate/internal/inert"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// Handler serves the mcpgate endpoints of a site (/mcp, /connectors and
// what is below it, the OAuth callback and the client metadata document)
// and passes every other request to the next handler. A failure goes to
// the site's handle_errors routes when it has some; else the handler
// writes the JSON body that clients expect, and logs it as Caddy logs a
// handler's error.
//
// It sets these placeholders, for access logs and later handlers:
//
//	{http.mcpgate.user}       the caller's identity, once known
//	{http.mcpgate.connector}  the connector a call or read went to
//	{http.mcpgate.tool}       the tool, prompt or resource it named
type Handler struct {
	// ToolSearch is how this site's /mcp lists tools, which wins over
	// the global mcpgate option's tool_search. Default: the global one.
	ToolSearch *mcpmux.ToolSearch `json:"tool_search,omitempty"`

	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcpgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the mcpgate app. With no global mcpgate block, Caddy
// makes an empty one: the handler works and serves nothing. The handler
// holds the app, not a gateway, so that it serves each generation the
// registry puts in force without a config reload.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("mcpgate")
	if err != nil {
		return err
	}
	h.app, h.logger = app.(*App), ctx.Logger()
	if h.ToolSearch != nil {
		// JSON config skips the Caddyfile's checks.
		return h.ToolSearch.Validate()
	}
	return nil
}

// ServeHTTP serves the gateway's endpoints with the gateway serving now.
// The HTTP API paths go to Caddy's reverse proxy (api.go) before the
// site's router, which would redirect a path with dot segments where the
// API must refuse it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !web.Owns(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	// Counted in until the answer ends, so that a registry change during
	// a long stream does not close the mux under it.
	g := h.app.live.Acquire()
	defer g.Leave()
	caller, known := h.caller(r)
	if id, ok := httpapi.Route(r.URL.Path); ok {
		inert.Mark(w.Header()) // before any answer, the gateway's own included: see inert.Mark
		if !known {
			return h.fail(w, r, errUnidentified)
		}
		return h.fail(w, r, h.serveAPI(w, r, g, caller, id))
	}
	// The aggregated endpoint, which serves nearly every agent request,
	// goes straight to the mux: the site's router would copy the request
	// to carry the caller and match it against its patterns, to send it
	// to the same place. Only the exact path: any other spelling of it
	// gets the router's judgement.
	if known && r.URL.Path == "/mcp" && r.URL.RawPath == "" {
		if h.ToolSearch != nil {
			r = r.WithContext(mcpmux.WithToolSearch(r.Context(), *h.ToolSearch))
		}
		g.Mux().ServeMCP(w, r, caller, "")
		return nil
	}
	// An unidentified request goes on: authorization servers fetch the
	// client metadata document with no identity, and a path that names
	// nothing is 404 whoever asks. The site answers 401 on every other
	// route itself.
	if known {
		r = r.WithContext(web.WithCaller(r.Context(), caller))
	}
	return h.fail(w, r, g.Site().Serve(w, r))
}

// errUnidentified answers a request whose caller the configured identity
// placeholder leaves empty.
var errUnidentified = &web.Error{Status: http.StatusUnauthorized, Message: "authentication is missing: the gateway could not tell who is calling"}

// fail hands a failure to Caddy. A site with handle_errors routes gets it
// as a caddyhttp.HandlerError, with the headers it needs (Allow,
// Retry-After) already set; any other site gets the JSON body that
// clients expect, written here, and the error log line that Caddy would
// have written. An error that is already a HandlerError, such as the
// reverse proxy's, goes to Caddy as it is.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[caddyhttp.HandlerError](err); ok {
		return err
	}
	status := http.StatusInternalServerError
	e, ok := errors.AsType[*web.Error](err)
	if ok && e.Status != 0 {
		status = e.Status
	}
	if srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		if ok {
			for k, v := range e.Header {
				w.Header()[k] = v
			}
		}
		return caddyhttp.Error(status, err)
	}
	web.WriteError(w, err)
	level := zapcore.DebugLevel
	if status >= http.StatusInternalServerError {
		level = zapcore.ErrorLevel
	}
	if ce := h.logger.Check(level, err.Error()); ce != nil {
		ce.Write(zap.Int("status", status), zap.String("uri", r.RequestURI))
	}
	return nil
}

// caller reads who is calling from the configured placeholders, and sets
// {http.mcpgate.user} for the access log. Unknown placeholders become
// empty rather than staying as text: on a site with no authentication,
// "{http.auth.user.id}" would otherwise be one identity that every
// anonymous caller shares, and whatever a grant gave it.
func (h *Handler) caller(r *http.Request) (grants.Caller, bool) {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	id := strings.TrimSpace(repl.ReplaceAll(h.app.Identity, ""))
	if id == "" {
		return grants.Caller{}, false
	}
	repl.Set("http.mcpgate.user", id)
	c := grants.Caller{ID: id}
	if h.app.Groups != "" {
		c.Groups = grants.SplitList(repl.ReplaceAll(h.app.Groups, ""))
	}
	return c, true
}

// annotate sets the placeholders that tell access logs where a request
// went.
func annotate(r *http.Request, connector, name string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.mcpgate.connector", connector)
		repl.Set("http.mcpgate.tool", name)
	}
}

// Interface guards
var (
	_ caddy.Module                = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
