package mcpgate

import "github.com/caddyserver/caddy/v2"

// ConnectorConfig declares one upstream: an MCP server, an HTTP API, or
// both behind one credential.
type ConnectorConfig struct {
	// ID names the connector in tool names ("<id>_<tool>"), grants and URLs.
	// Required; it matches ^[a-z0-9][a-z0-9-]{0,31}$ and is unique.
	ID string `json:"id"`

	// URL is the upstream's streamable HTTP MCP endpoint. Required unless
	// API is set. Accepts placeholders such as {env.NAME}.
	URL string `json:"url,omitempty"`

	// API is the base URL of the upstream's plain HTTP API, such as
	// https://api.example.com/v1: an absolute http or https URL with a
	// host and no query, credentials or fragment. Agents reach
	// <base>/<path> at /connectors/<id>/api/<path> on the gateway, which
	// injects the connector's credential; a grant must list the connector
	// in its connectors to allow it. Required unless URL is set. Accepts
	// placeholders such as {env.NAME}.
	API string `json:"api,omitempty"`

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

// AuthConfig is how mcpgate authenticates to a connector: a static
// credential or OAuth. Its values accept placeholders such as {env.NAME}
// and {file./path}, and are never logged.
type AuthConfig struct {
	// Type is "bearer" (sends Authorization: Bearer <token>), "header"
	// (sends <header>: <value>) or "oauth" (tokens from a consent flow).
	// Required.
	Type string `json:"type"`

	// OAuth configures the OAuth client, for type "oauth". Default:
	// everything discovered from the upstream.
	OAuth *OAuthConfig `json:"oauth,omitempty"`

	// Token is the bearer token, for type "bearer".
	Token string `json:"token,omitempty"`

	// Header is the header name, for type "header".
	Header string `json:"header,omitempty"`

	// Value is the header value, for type "header".
	Value string `json:"value,omitempty"`
}

// OAuthConfig is a connector's OAuth client. mcpgate discovers the
// authorization server from the upstream (RFC 9728, RFC 8414, OpenID
// Connect); the endpoint fields override what discovery finds.
type OAuthConfig struct {
	// Registration is how mcpgate gets a client at the authorization
	// server: "static" (ClientID), "cimd" (client ID metadata document),
	// "dcr" (RFC 7591 dynamic registration) or "auto" (default: static,
	// else cimd where the server supports it, else dcr).
	Registration string `json:"registration,omitempty"`

	// Consent is "per_user" (default: each user consents, and calls use
	// that user's token) or "shared" (an admin consents once, and every
	// granted user's calls use that token).
	Consent string `json:"consent,omitempty"`

	// Scopes to request. Default: what the upstream's challenge or
	// metadata advertise.
	Scopes []string `json:"scopes,omitempty"`

	// ClientID is a pre-registered client id.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is the pre-registered client's secret. Use a
	// placeholder such as {env.NAME}.
	ClientSecret string `json:"client_secret,omitempty"`

	// TokenAuthMethod is how the static client authenticates at the token
	// endpoint: "client_secret_basic" (default with a secret),
	// "client_secret_post" or "none".
	TokenAuthMethod string `json:"token_auth_method,omitempty"`

	// Audience is sent as the audience parameter, for servers that want it.
	Audience string `json:"audience,omitempty"`

	// Resource is the RFC 8707 resource indicator. Default: the
	// connector's URL, or its API for a connector without a URL.
	Resource string `json:"resource,omitempty"`

	// Issuer overrides the authorization server that discovery finds.
	Issuer string `json:"issuer,omitempty"`

	// AuthorizationEndpoint overrides the discovered endpoint.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`

	// TokenEndpoint overrides the discovered endpoint.
	TokenEndpoint string `json:"token_endpoint,omitempty"`

	// RegistrationEndpoint overrides the discovered endpoint.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`

	// RevocationEndpoint overrides the discovered endpoint.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`

	// InsecureLoopback lets discovered URLs use http:// on loopback
	// addresses. For tests and development only.
	InsecureLoopback bool `json:"insecure_loopback,omitempty"`
}

// StorageConfig is where mcpgate keeps its records.
type StorageConfig struct {
	// Backend is "badger" (default), an embedded database.
	Backend string `json:"backend,omitempty"`

	// Path is the database directory. Default: Caddy's data directory
	// + "/mcpgate".
	Path string `json:"path,omitempty"`
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
