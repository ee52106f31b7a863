package mcpgate

import "github.com/caddyserver/caddy/v2"

// ConnectorConfig declares one upstream MCP server.
type ConnectorConfig struct {
	// ID names the connector in tool names ("<id>_<tool>"), grants and URLs.
	// Required; it matches ^[a-z0-9][a-z0-9-]{0,31}$ and is unique.
	ID string `json:"id"`

	// URL is the upstream's streamable HTTP MCP endpoint. Required.
	URL string `json:"url"`

	// Auth is how mcpgate authenticates to the upstream. Default: no
	// credential.
	Auth *AuthConfig `json:"auth,omitempty"`

	// Timeout bounds each request to the upstream, including a list
	// fan-out. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Tools narrows which upstream tools enter the catalog and sets their
	// operation facts. Default: every tool, classified by its annotations.
	Tools *ToolsConfig `json:"tools,omitempty"`
}

// AuthConfig is a connector's static credential. Its values accept
// placeholders such as {env.NAME} and {file./path}, and are never logged.
type AuthConfig struct {
	// Type is "bearer" (sends Authorization: Bearer <token>) or "header"
	// (sends <header>: <value>). Required.
	Type string `json:"type"`

	// Token is the bearer token, for type "bearer".
	Token string `json:"token,omitempty"`

	// Header is the header name, for type "header".
	Header string `json:"header,omitempty"`

	// Value is the header value, for type "header".
	Value string `json:"value,omitempty"`
}

// ToolsConfig is the config's say over a connector's tools.
type ToolsConfig struct {
	// Allow lists the upstream tool names that enter the catalog. Default:
	// all of them.
	Allow []string `json:"allow,omitempty"`

	// Operations maps upstream tool names to "read" or "write", overriding
	// the upstream's readOnlyHint annotation. A tool with neither counts as
	// a write.
	Operations map[string]string `json:"operations,omitempty"`
}

// GrantConfig is one access rule. Access is denied unless some grant allows
// it.
type GrantConfig struct {
	// Sources are the callers the grant applies to: "user:<id>",
	// "group:<name>", or "*" for every identified caller. Required.
	Sources []string `json:"src"`

	// Role is "user" (default) or "admin".
	Role string `json:"role,omitempty"`

	// Connectors lists the connector ids the grant covers. For a kind with
	// no patterns of its own, the grant allows every item of these
	// connectors.
	Connectors []string `json:"connectors,omitempty"`

	// Tools are globs over "<connector>/<tool>": "*" matches within one
	// segment, "**" matches zero or more segments.
	Tools []string `json:"tools,omitempty"`

	// Resources are globs over "<connector>/<uri>".
	Resources []string `json:"resources,omitempty"`

	// Templates are globs over "<connector>/<uri template>".
	Templates []string `json:"templates,omitempty"`

	// Prompts are globs over "<connector>/<prompt>".
	Prompts []string `json:"prompts,omitempty"`

	// Operations is "read" to allow only read-only tools, or empty for all.
	Operations string `json:"operations,omitempty"`
}
