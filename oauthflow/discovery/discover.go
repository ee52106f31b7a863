package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// Errors that callers branch on; the errors Discover returns wrap them
// with detail.
var (
	// ErrNoPKCE means the authorization server does not advertise the
	// S256 code challenge method, so authorization must not proceed.
	ErrNoPKCE = errors.New("authorization server does not support PKCE S256")
	// ErrResourceMismatch means the protected-resource metadata describes
	// another resource than the connector URL.
	ErrResourceMismatch = errors.New("resource mismatch")
	// ErrIssuerMismatch means an authorization server's metadata claims an
	// issuer other than the one it was fetched for.
	ErrIssuerMismatch = errors.New("issuer mismatch")
	// ErrNoAuthorizationServer means no usable authorization server was
	// found: the resource metadata lists none, or the issuer publishes no
	// metadata at any well-known URI.
	ErrNoAuthorizationServer = errors.New("no authorization server")
	// ErrNoResourceMetadata means the resource publishes no protected
	// resource metadata at any candidate URL.
	ErrNoResourceMetadata = errors.New("no protected resource metadata")
)

// probeProtocolVersion is the MCP protocol version of the probe request.
const probeProtocolVersion = "2025-11-25"

// probeBody is an MCP initialize request, which a protected MCP server
// answers with 401 and its Bearer challenge.
const probeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` +
	probeProtocolVersion + `","capabilities":{},"clientInfo":{"name":"mcpgate","version":"1"}}}`

// Options tune Discover; the zero value means no challenge yet, no
// configured issuer and a zero egress.Policy.
type Options struct {
	// Challenge is the Bearer challenge the resource already sent, for
	// example with a 401 to a tool call. When nil, Discover probes the
	// resource with an MCP initialize request to get one.
	Challenge *Challenge
	// Policy is the egress policy that every URL discovery learns must
	// pass (egress.Check) before it is fetched or returned. It should be
	// the policy the *http.Client was built with; put the connector URL's
	// authority in Policy.Trusted when it is plain http or private.
	Policy egress.Policy
	// Issuer is the authorization server an admin configured for the
	// resource. When the resource publishes no metadata
	// (ErrNoResourceMetadata), Discover reads this issuer's instead, and
	// Result.Resource is empty.
	Issuer string
}

// Discover finds the authorization server of the MCP server at resource
// and returns its validated metadata.
//
// It follows the MCP authorization specification: the resource_metadata
// URL of the Bearer challenge, else the RFC 9728 well-known URIs (path
// inserted, then root); the resource in that metadata must cover resource
// (see ErrResourceMismatch); then the RFC 8414 or OpenID Connect metadata
// of the first entry of authorization_servers (the MCP specification
// leaves the choice to the client, and the first is the resource's
// preference). The metadata's issuer must be identical to that entry, S256
// must be among its PKCE methods, and its endpoints must pass the egress
// policy.
//
// A resource that publishes no metadata is served by opts.Issuer when an
// admin configured one, else, unless its challenge named a
// resource_metadata URL, as the 2025-03-26 specification says (see
// legacyServer); Result.FoundBy says which.
//
// Result.Resource.Resource is the identifier the metadata gave, which may
// be the connector URL or a segment prefix of it (RFC 9728 §3.3, checked
// here); it is the RFC 8707 resource parameter to send.
//
// All requests go through hc, which should be an egress.Client; nil means
// egress.Client(opts.Policy). Discover makes at most three POSTs and a
// DELETE (the probe, when opts has no challenge; see probe) and five GETs.
func Discover(ctx context.Context, hc *http.Client, resource string, opts Options) (*Result, error) {
	if hc == nil {
		hc = egress.Client(opts.Policy)
	}
	u, err := egress.Check(resource, opts.Policy)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	ch := opts.Challenge
	if ch == nil {
		if ch, err = probe(ctx, hc, resource); err != nil {
			return nil, err
		}
	}
	prm, err := fetchResourceMetadata(ctx, hc, u, ch, opts.Policy)
	switch {
	case errors.Is(err, ErrNoResourceMetadata) && opts.Issuer != "":
		as, err := fetchServerMetadata(ctx, hc, opts.Issuer, opts.Policy)
		if err != nil {
			return nil, err
		}
		return withoutResource(as, ch, FoundByIssuer), nil
	case errors.Is(err, ErrNoResourceMetadata) && (ch == nil || ch.ResourceMetadata == ""):
		return legacyServer(ctx, hc, u, ch, opts.Policy, err)
	case err != nil:
		return nil, err
	}
	as, err := fetchServerMetadata(ctx, hc, prm.AuthorizationServers[0], opts.Policy)
	if err != nil {
		return nil, err
	}
	return &Result{Resource: *prm, Server: *as, Scopes: defaultScopes(ch, prm)}, nil
}

// withoutResource is the Result for a resource that published no
// metadata: without the resource's scopes, the server's are the offer.
func withoutResource(as *ServerMetadata, ch *Challenge, how string) *Result {
	return &Result{Server: *as, Scopes: defaultScopes(ch, &ResourceMetadata{ScopesSupported: as.ScopesSupported}), FoundBy: how}
}

// legacyServer serves a resource that publishes no protected-resource
// metadata the way the 2025-03-26 MCP authorization specification
// ("Server Metadata Discovery", "Fallbacks for Servers without Metadata
// Discovery") says: the authorization base URL is the resource's origin
// (its path discarded), whose RFC 8414 metadata is used; when it has none,
// the default endpoints /authorize, /token and /register under it are.
//
// A resource whose challenge named a resource_metadata URL is no
// 2025-03-26 server, and never gets here. noPRM, the error that says no
// metadata was found, is kept in any error returned.
func legacyServer(ctx context.Context, hc *http.Client, resource *url.URL, ch *Challenge, pol egress.Policy, noPRM error) (*Result, error) {
	base := resource.Scheme + "://" + resource.Host
	as, err := fetchServerMetadata(ctx, hc, base, pol)
	switch {
	case err == nil:
		return withoutResource(as, ch, FoundByOrigin), nil
	case !errors.Is(err, ErrNoAuthorizationServer):
		return nil, fmt.Errorf("%w; the origin's metadata (2025-03-26): %w", noPRM, err)
	}
	as = &ServerMetadata{
		Issuer:                base,
		AuthorizationEndpoint: base + "/authorize",
		TokenEndpoint:         base + "/token",
		RegistrationEndpoint:  base + "/register",
		// 2025-03-26 makes PKCE required of every client and server, so a
		// server that cannot advertise it still supports it.
		CodeChallengeMethodsSupported: []string{"S256"},
	}
	return withoutResource(as, ch, FoundByDefaults), nil
}

// defaultScopes returns the scopes to request when the configuration names
// none: the challenge's, else those the resource metadata advertises.
func defaultScopes(ch *Challenge, prm *ResourceMetadata) []string {
	if ch != nil && len(ch.Scope) > 0 {
		return slices.Clone(ch.Scope)
	}
	return slices.Clone(prm.ScopesSupported)
}
