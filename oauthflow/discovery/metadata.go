// Package discovery finds the authorization server of a protected MCP
// resource: RFC 9728 protected-resource metadata, then RFC 8414
// authorization-server metadata or OpenID Connect discovery. Everything it
// fetches is hostile input and is checked before use.
package discovery

// ResourceMetadata is an RFC 9728 protected-resource metadata document.
type ResourceMetadata struct {
	// Resource is the resource identifier; Discover checks that it covers
	// the connector URL.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer identifiers of the authorization
	// servers the resource accepts tokens from; Discover uses the first.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported are the scopes the resource advertises.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
}

// ServerMetadata is an RFC 8414 (or OpenID Connect) authorization-server
// metadata document, reduced to what an OAuth client needs.
type ServerMetadata struct {
	// Issuer is the issuer identifier, identical to the one the document
	// was fetched for.
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is where the browser is sent for consent.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint exchanges codes and refresh tokens.
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// RegistrationEndpoint is the RFC 7591 dynamic client registration
	// endpoint, if any.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// RevocationEndpoint is the RFC 7009 revocation endpoint, if any.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// ScopesSupported are the scopes the server advertises.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// CodeChallengeMethodsSupported are the PKCE methods; Discover
	// requires "S256".
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported are the client authentication
	// methods the token endpoint accepts.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// ClientIDMetadataDocumentSupported says the server accepts a URL as
	// client_id (client ID metadata documents).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported says the server sends
	// the RFC 9207 iss parameter with authorization responses.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// DPoPSigningAlgValuesSupported are the DPoP proof algorithms the
	// server accepts (RFC 9449 §5.1); listed, it binds tokens to keys.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// Challenge is what a protected resource said in a WWW-Authenticate
// Bearer challenge.
type Challenge struct {
	// ResourceMetadata is the resource_metadata URL, if any.
	ResourceMetadata string
	// Scope is the scope parameter, split on spaces.
	Scope []string
	// Error is the error parameter: "invalid_token", "insufficient_scope"…
	Error string
}

// Result is what discovery learned about one resource.
type Result struct {
	// Resource is the protected-resource metadata; its Resource matches
	// the resource discovery started from.
	Resource ResourceMetadata
	// Server is the metadata of the authorization server used.
	Server ServerMetadata
	// Scopes is what to request when config does not say: the challenge's
	// scope, else the resource's scopes_supported.
	Scopes []string
	// FoundBy says how Server was found when the resource published no
	// metadata (Resource is then empty): FoundByIssuer, FoundByOrigin or
	// FoundByDefaults. It is empty when the resource's metadata named it.
	FoundBy string
}

// The values of Result.FoundBy.
const (
	// FoundByIssuer: the issuer an admin configured.
	FoundByIssuer = "configured issuer"
	// FoundByOrigin: the authorization-server metadata at the resource's
	// origin (MCP 2025-03-26).
	FoundByOrigin = "metadata at the resource's origin (2025-03-26)"
	// FoundByDefaults: the default endpoints /authorize, /token and
	// /register at the resource's origin (MCP 2025-03-26).
	FoundByDefaults = "default endpoints at the resource's origin (2025-03-26)"
)
