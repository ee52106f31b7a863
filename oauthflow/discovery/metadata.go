// Package discovery finds the authorization server of a protected MCP
// resource: RFC 9728 protected-resource metadata, then RFC 8414
// authorization-server metadata or OpenID Connect discovery. Everything it
// fetches is hostile input and is checked before use.
package discovery

// ResourceMetadata is an RFC 9728 protected-resource metadata document.
type ResourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
}

// ServerMetadata is an RFC 8414 (or OpenID Connect) authorization-server
// metadata document, reduced to what an OAuth client needs.
type ServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint,omitempty"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
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
}
