package oauthflow

import (
	"context"
	"fmt"
	"slices"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// authServer is the authorization server a connector uses: what discovery
// found, with the config's overrides applied and checked.
type authServer struct {
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	RegistrationEndpoint  string
	RevocationEndpoint    string
	// IssRequired: authorization_response_iss_parameter_supported.
	IssRequired bool
	// CIMD: client_id_metadata_document_supported.
	CIMD bool
	// AuthMethods is token_endpoint_auth_methods_supported.
	AuthMethods []string
	// DPoPAlgs is dpop_signing_alg_values_supported (RFC 9449 §5.1).
	DPoPAlgs []string
	// Scopes is what to ask for when config does not say.
	Scopes []string
	// Resource is the RFC 8707 resource parameter of every authorization
	// and token request (see resourceOf).
	Resource string
}

// server returns the connector's authorization server, discovering it
// unless a recent result is cached. Failures are not cached.
func (m *Manager) server(ctx context.Context, c *connector) (*authServer, error) {
	var res *discovery.Result
	if c.cfg.Discover != nil {
		d := c.discovered.Load()
		if d == nil || m.now().Sub(d.at) > discoveryTTL {
			v, err, _ := c.discovery.Do("", func() (any, error) {
				// Shared by every caller waiting: not ended by the first
				// one leaving.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
				defer cancel()
				r, err := c.cfg.Discover(ctx, c.cfg.Resource, c.challenge.Load())
				if err != nil || r == nil {
					return nil, fmt.Errorf("discovering the authorization server of %s: %w", c.id, orNoResult(err))
				}
				c.discovered.Store(&discovered{result: r, at: m.now()})
				return r, nil
			})
			if err != nil {
				return nil, err
			}
			res = v.(*discovery.Result)
		} else {
			res = d.result
		}
	}
	return c.resolve(res)
}

func orNoResult(err error) error {
	if err == nil {
		return fmt.Errorf("no result")
	}
	return err
}

// resolve applies the config to a discovery result (nil without
// discovery). Endpoints of two servers are never mixed: when config names
// an issuer other than the discovered one, only configured endpoints are
// used.
func (c *connector) resolve(res *discovery.Result) (*authServer, error) {
	cfg := c.cfg
	as := &authServer{}
	if res != nil && (cfg.Issuer == "" || cfg.Issuer == res.Server.Issuer) {
		s := res.Server
		if !slices.Contains(s.CodeChallengeMethodsSupported, "S256") {
			// MCP authorization: clients MUST refuse to proceed without
			// advertised PKCE support.
			return nil, c.misconfigured("the authorization server does not advertise PKCE with S256 (code_challenge_methods_supported)")
		}
		*as = authServer{Issuer: s.Issuer, AuthorizationEndpoint: s.AuthorizationEndpoint, TokenEndpoint: s.TokenEndpoint,
			RegistrationEndpoint: s.RegistrationEndpoint, RevocationEndpoint: s.RevocationEndpoint,
			IssRequired: s.AuthorizationResponseIssParameterSupported, CIMD: s.ClientIDMetadataDocumentSupported,
			AuthMethods: s.TokenEndpointAuthMethodsSupported, Scopes: validScopes(res.Scopes), DPoPAlgs: s.DPoPSigningAlgValuesSupported}
	} else if res != nil && (cfg.AuthorizationEndpoint == "" || cfg.TokenEndpoint == "") {
		return nil, c.misconfigured(fmt.Sprintf("the resource names the authorization server %q, not the configured issuer %q; configure its authorization_endpoint and token_endpoint too, or drop issuer",
			res.Server.Issuer, cfg.Issuer))
	}
	as.Resource = resourceOf(cfg.Resource, res)
	override(&as.Issuer, cfg.Issuer)
	override(&as.AuthorizationEndpoint, cfg.AuthorizationEndpoint)
	override(&as.TokenEndpoint, cfg.TokenEndpoint)
	override(&as.RegistrationEndpoint, cfg.RegistrationEndpoint)
	override(&as.RevocationEndpoint, cfg.RevocationEndpoint)
	return as, c.check(as)
}

// resourceOf returns the resource parameter to send: the resource
// identifier of the protected-resource metadata when the resource
// published one, else the connector URL.
//
// The MCP authorization specification asks for the canonical URI of the
// MCP server, and RFC 9728 §2 makes the metadata's resource that
// identifier: an authorization server that knows the resource as
// https://host issues no token for https://host/mcp (RFC 8707 §2,
// invalid_target). Discovery has checked that it is the connector URL or
// a segment prefix of it on the same origin (RFC 9728 §3.3), so it names
// no other server.
func resourceOf(connector string, res *discovery.Result) string {
	if res != nil && res.Resource.Resource != "" {
		return res.Resource.Resource
	}
	return connector
}

func override(field *string, value string) {
	if value != "" {
		*field = value
	}
}

// check refuses a server whose endpoints are missing or unsafe.
func (c *connector) check(as *authServer) error {
	if as.Issuer == "" || as.AuthorizationEndpoint == "" || as.TokenEndpoint == "" {
		return c.misconfigured("the authorization server metadata lacks issuer, authorization_endpoint or token_endpoint")
	}
	for _, e := range []struct{ name, url string }{
		{"issuer", as.Issuer},
		{"authorization_endpoint", as.AuthorizationEndpoint},
		{"token_endpoint", as.TokenEndpoint},
		{"registration_endpoint", as.RegistrationEndpoint},
		{"revocation_endpoint", as.RevocationEndpoint},
	} {
		if err := checkEndpoint(e.name, e.url, c.cfg.InsecureLoopback); err != nil {
			return c.misconfigured("the authorization server's " + err.Error())
		}
	}
	return nil
}

// misconfigured returns an ErrMisconfigured for the connector.
func (c *connector) misconfigured(reason string) error {
	return &misconfigured{connector: c.id, reason: reason}
}

// validScopes keeps the valid scope tokens of what discovery advertised,
// at most 64 of them.
func validScopes(in []string) []string {
	var out []string
	for _, sc := range in {
		if discovery.ValidScope(sc) && len(out) < 64 {
			out = append(out, sc)
		}
	}
	return out
}
