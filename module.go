// Package mcpgate is a Caddy app and HTTP handler that serve remote MCP
// servers (connectors) to agents through one MCP endpoint, with grants
// checked on every list and call and credentials injected server-side.
package mcpgate

import (
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(App{})
	caddy.RegisterModule(Handler{})
}

// App is the mcpgate app: the connectors, the grants and the gateway that
// serves them. Sites serve it with the mcpgate handler.
type App struct {
	// PublicURL is the external base URL of the gateway, used to build the
	// links mcpgate hands out. Default: derived from each request.
	PublicURL string `json:"public_url,omitempty"`

	// Identity is a placeholder (or a literal) that names the caller.
	// Default: {http.auth.user.id}. An empty value is answered with 401.
	Identity string `json:"identity,omitempty"`

	// Groups is a placeholder whose value lists the caller's groups,
	// separated by commas or spaces. Default: none.
	Groups string `json:"groups,omitempty"`

	// ToolSeparator joins a connector id and a tool or prompt name:
	// "_" (default) or "__".
	ToolSeparator string `json:"tool_separator,omitempty"`

	// MaxRequestBody caps an agent's request body in bytes; a larger one is
	// answered with 413. Default: 4 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`

	// ListCacheTTL is how long an upstream's lists are served from cache
	// before they are fetched again. list_changed notifications invalidate
	// them sooner. Default: 5m.
	ListCacheTTL caddy.Duration `json:"list_cache_ttl,omitempty"`

	// Connectors are the upstream MCP servers.
	Connectors []ConnectorConfig `json:"connectors,omitempty"`

	// Grants decide who may see and use what. No grant, no access.
	Grants []GrantConfig `json:"grants,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcpgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Start implements caddy.App.
func (a *App) Start() error { return nil }

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Handler serves the mcpgate endpoints of a site (/mcp, /connectors/...)
// and passes every other request to the next handler.
type Handler struct{}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.mcpgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Interface guards
var (
	_ caddy.App    = (*App)(nil)
	_ caddy.Module = (*Handler)(nil)
)
