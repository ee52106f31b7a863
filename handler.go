package mcpgate

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/httpapi"
	"github.com/mcpgate/caddy-mcpgate/internal/inert"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// Handler serves the mcpgate endpoints of a site (/mcp, /connectors and
// /connectors/{id}/mcp) and passes every other request to the next handler.
//
// It sets these placeholders, for access logs and later handlers:
//
//	{http.mcpgate.user}       the caller's identity, once known
//	{http.mcpgate.connector}  the connector a call or read went to
//	{http.mcpgate.tool}       the tool, prompt or resource it named
type Handler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcpgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the mcpgate app. With no global mcpgate block, Caddy
// makes an empty one: the handler works and serves nothing.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("mcpgate")
	if err != nil {
		return err
	}
	h.app = app.(*App)
	return nil
}

// ServeHTTP routes the gateway's endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	switch {
	case path == "/connect/client-metadata.json":
		return h.serveClientMetadata(w, r)
	case path == "/mcp", path == "/connectors", path == "/connect/callback", strings.HasPrefix(path, "/connectors/"):
	default:
		return next.ServeHTTP(w, r)
	}
	id, tail, _ := strings.Cut(strings.TrimPrefix(path, "/connectors/"), "/")
	if strings.HasPrefix(path, "/connectors/") && tail != "mcp" && tail != "connect" && tail != "disconnect" && !httpapi.IsPath(tail) && path != "/connectors/presets" {
		return h.notFound(w)
	}
	if strings.HasPrefix(path, "/connectors/") && httpapi.IsPath(tail) {
		// Before any answer, the gateway's own included: see inert.Mark.
		inert.Mark(w.Header())
	}
	caller, known := h.caller(r)
	if !known {
		writeError(w, http.StatusUnauthorized, "authentication is missing: the gateway could not tell who is calling")
		return nil
	}
	g := h.app.acquire()
	defer g.leave()
	switch {
	case path == "/mcp":
		g.mux.ServeMCP(w, r, caller, "")
		return nil
	case path == "/connectors":
		return h.serveConnectors(w, r, g, caller)
	case path == "/connectors/presets":
		writeJSONBody(w, http.StatusOK, map[string]any{"presets": h.app.registry.Presets()})
		return nil
	case path == "/connect/callback":
		return h.serveCallback(w, r, g, caller)
	case tail == "connect":
		return h.serveConnect(w, r, g, caller, id)
	case tail == "disconnect":
		return h.serveDisconnect(w, r, g, caller, id)
	case httpapi.IsPath(tail):
		return h.serveAPI(w, r, g, caller, id)
	}
	// The mux answers an unknown connector as it answers one hidden from
	// the caller.
	g.mux.ServeMCP(w, r, caller, id)
	return nil
}

// notFound answers a path that names no endpoint, or a connector that
// does not exist or that the caller may not see, all alike.
func (h *Handler) notFound(w http.ResponseWriter) error {
	writeError(w, http.StatusNotFound, mcpmux.NoSuchConnector)
	return nil
}

// caller reads who is calling from the configured placeholders, and sets
// {http.mcpgate.user} for the access log.
func (h *Handler) caller(r *http.Request) (grants.Caller, bool) {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	id := strings.TrimSpace(repl.ReplaceAll(h.app.Identity, ""))
	if id == "" {
		return grants.Caller{}, false
	}
	repl.Set("http.mcpgate.user", id)
	c := grants.Caller{ID: id}
	if h.app.Groups != "" {
		c.Groups = splitList(repl.ReplaceAll(h.app.Groups, ""))
	}
	return c, true
}

// splitList splits a list of groups or scopes on commas and white space,
// sorted, without empty items and duplicates.
func splitList(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	slices.Sort(fields)
	return slices.Compact(fields)
}

// annotate sets the placeholders that tell access logs where a request
// went.
func annotate(r *http.Request, connector, name string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.mcpgate.connector", connector)
		repl.Set("http.mcpgate.tool", name)
	}
}

// writeError writes a JSON error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSONBody(w, status, map[string]string{"error": msg})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
