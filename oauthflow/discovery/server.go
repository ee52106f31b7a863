package discovery

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// The well-known URI suffixes of RFC 8414 §3 and OpenID Connect Discovery
// 1.0 §4.
const (
	oauthWellKnown = "/.well-known/oauth-authorization-server"
	oidcWellKnown  = "/.well-known/openid-configuration"
)

// fetchServerMetadata finds and validates the metadata of the
// authorization server whose issuer identifier is issuer.
//
// The first candidate that answers decides: a document whose issuer is
// not issuer is an error, not a reason to try the next one.
func fetchServerMetadata(ctx context.Context, hc *http.Client, issuer string, pol egress.Policy) (*ServerMetadata, error) {
	u, err := checkIssuer(issuer, pol)
	if err != nil {
		return nil, err
	}
	candidates := serverMetadataURLs(u)
	doc, err := fetchFirst(ctx, hc, candidates, func(doc *ServerMetadata) error {
		return validateServerMetadata(doc, issuer, pol)
	})
	if err != nil {
		return nil, fmt.Errorf("authorization server metadata: %w", err)
	}
	if doc != nil {
		return doc, nil
	}
	return nil, fmt.Errorf("%w: no metadata for issuer %s at %s",
		ErrNoAuthorizationServer, quote(issuer), strings.Join(redactAll(candidates), ", "))
}

// checkIssuer applies the egress policy to an issuer identifier, which
// RFC 8414 §2 also forbids to have a query or fragment.
func checkIssuer(issuer string, pol egress.Policy) (*url.URL, error) {
	u, err := egress.Check(issuer, pol)
	if err != nil {
		return nil, fmt.Errorf("authorization server %s: %w", quote(issuer), err)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("authorization server %s: issuer has a query", quote(issuer))
	}
	return u, nil
}

// serverMetadataURLs returns the candidate metadata URLs for an issuer, in
// the order of the MCP authorization specification ("Authorization Server
// Metadata Discovery"): for an issuer with a path, RFC 8414 path
// insertion, OpenID Connect path insertion, then OpenID Connect path
// appending; for an issuer without one, the RFC 8414 and OpenID Connect
// root documents.
func serverMetadataURLs(issuer *url.URL) []string {
	origin := issuer.Scheme + "://" + issuer.Host
	path := issuer.EscapedPath()
	if path == "" || path == "/" {
		return []string{origin + oauthWellKnown, origin + oidcWellKnown}
	}
	return []string{
		origin + oauthWellKnown + path,
		origin + oidcWellKnown + path,
		origin + strings.TrimSuffix(path, "/") + oidcWellKnown,
	}
}

// validateServerMetadata checks a decoded document: the issuer it claims,
// PKCE support, and every endpoint URL.
func validateServerMetadata(doc *ServerMetadata, issuer string, pol egress.Policy) error {
	// RFC 8414 §3.3; MCP 2026-07-28: identical, with no case folding,
	// trailing-slash or default-port normalization.
	if doc.Issuer != issuer {
		return fmt.Errorf("%w: the metadata's issuer %s is not %s", ErrIssuerMismatch, quote(doc.Issuer), quote(issuer))
	}
	if err := checkPKCE(doc.CodeChallengeMethodsSupported); err != nil {
		return err
	}
	for _, e := range []struct {
		field    string
		value    string
		required bool
	}{
		{"authorization_endpoint", doc.AuthorizationEndpoint, true},
		{"token_endpoint", doc.TokenEndpoint, true},
		{"registration_endpoint", doc.RegistrationEndpoint, false},
		{"revocation_endpoint", doc.RevocationEndpoint, false},
	} {
		if e.value == "" {
			if e.required {
				return fmt.Errorf("%s is missing", e.field)
			}
			continue
		}
		if _, err := egress.Check(e.value, pol); err != nil {
			return fmt.Errorf("%s: %w", e.field, err)
		}
	}
	if len(doc.ScopesSupported) > maxScopes {
		return fmt.Errorf("the metadata lists %d scopes_supported, more than %d", len(doc.ScopesSupported), maxScopes)
	}
	return nil
}

// checkPKCE requires S256 among the advertised code challenge methods:
// MCP clients must verify PKCE support and refuse to proceed when
// code_challenge_methods_supported is absent.
func checkPKCE(methods []string) error {
	switch {
	case slices.Contains(methods, "S256"):
		return nil
	case len(methods) == 0:
		return fmt.Errorf("%w: code_challenge_methods_supported is absent", ErrNoPKCE)
	case len(methods) > 8:
		return fmt.Errorf("%w: code_challenge_methods_supported lists %d methods, none S256", ErrNoPKCE, len(methods))
	}
	quoted := make([]string, len(methods))
	for i, m := range methods {
		quoted[i] = quote(m)
	}
	return fmt.Errorf("%w: code_challenge_methods_supported is [%s]", ErrNoPKCE, strings.Join(quoted, " "))
}
