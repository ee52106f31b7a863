package discovery

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// maxAuthorizationServers bounds the authorization_servers list, so that a
// hostile document cannot make discovery do unbounded work.
const maxAuthorizationServers = 16

// resourceWellKnown is the RFC 9728 §3 well-known URI suffix.
const resourceWellKnown = "/.well-known/oauth-protected-resource"

// fetchResourceMetadata finds and validates the protected-resource
// metadata of resource (RFC 9728; MCP authorization, "Protected Resource
// Metadata Discovery Requirements").
//
// A challenge's resource_metadata URL is the only candidate when present:
// the MCP specification falls back to the well-known URIs only when the
// header has none. Otherwise the candidates are the well-known URI with
// the resource's path inserted, then the root one.
func fetchResourceMetadata(ctx context.Context, hc *http.Client, resource *url.URL, ch *Challenge, pol egress.Policy) (*ResourceMetadata, error) {
	candidates := resourceMetadataURLs(resource)
	if ch != nil && ch.ResourceMetadata != "" {
		if _, err := egress.Check(ch.ResourceMetadata, pol); err != nil {
			return nil, fmt.Errorf("resource_metadata in WWW-Authenticate: %w", err)
		}
		candidates = []string{ch.ResourceMetadata}
	}
	doc, err := fetchFirst(ctx, hc, candidates, func(doc *ResourceMetadata) error {
		return validateResourceMetadata(doc, resource)
	})
	if err != nil {
		return nil, fmt.Errorf("protected resource metadata: %w", err)
	}
	if doc != nil {
		return doc, nil
	}
	return nil, fmt.Errorf("%w at %s", ErrNoResourceMetadata, strings.Join(redactAll(candidates), ", "))
}

// resourceMetadataURLs returns the RFC 9728 §3.1 well-known URIs for a
// resource, most specific first: the path (and query) inserted after
// "/.well-known/oauth-protected-resource", then the root.
func resourceMetadataURLs(resource *url.URL) []string {
	root := resource.Scheme + "://" + resource.Host + resourceWellKnown
	path := resource.EscapedPath()
	if path == "/" {
		path = "" // §3.1: a terminating slash after the host is removed
	}
	inserted := root + path
	if resource.RawQuery != "" {
		inserted += "?" + resource.RawQuery
	}
	if inserted == root {
		return []string{root}
	}
	return []string{inserted, root}
}

// validateResourceMetadata checks a decoded document against the
// resource it is meant to describe.
func validateResourceMetadata(doc *ResourceMetadata, resource *url.URL) error {
	if doc.Resource == "" {
		return fmt.Errorf("%w: the metadata has no resource", ErrResourceMismatch)
	}
	if !resourceMatches(doc.Resource, resource) {
		return fmt.Errorf("%w: the metadata's resource %s does not match the connector URL %s",
			ErrResourceMismatch, quote(doc.Resource), quote(redact(resource.String())))
	}
	switch n := len(doc.AuthorizationServers); {
	case n == 0:
		return fmt.Errorf("%w: the metadata lists no authorization_servers", ErrNoAuthorizationServer)
	case n > maxAuthorizationServers:
		return fmt.Errorf("the metadata lists %d authorization_servers, more than %d", n, maxAuthorizationServers)
	}
	if len(doc.ScopesSupported) > maxScopes {
		return fmt.Errorf("the metadata lists %d scopes_supported, more than %d", len(doc.ScopesSupported), maxScopes)
	}
	return nil
}

// Covers reports whether resource identifier covers resource as
// protected-resource metadata may (see resourceMatches).
func Covers(identifier, resource string) bool {
	u, err := url.Parse(resource)
	return err == nil && resourceMatches(identifier, u)
}

// resourceMatches reports whether a metadata document's resource
// identifier covers the connector URL.
//
// RFC 9728 §3.3 wants the identifier to be identical to the URL the
// well-known URI was built from (the origin, for the root well-known URI)
// or, for a resource_metadata URL from a challenge, to the URL requested.
// The rule here is the same-origin path-prefix rule of
// draft-mcguinness-oauth-rfc9728bis, which includes both: after
// lower-casing the scheme and host, making the default port explicit and
// reading an empty path as "/" (RFC 3986 §6.2.3), the identifier must
// equal the connector URL, or have the same origin, no query, and a path
// that is a prefix of the connector's ending on a segment boundary.
// So https://host/mcp and https://host/ cover https://host/mcp, and
// https://host/mcp does not cover https://host/mcpx. Paths are
// compared as written: no percent-decoding, no dot-segment removal.
func resourceMatches(identifier string, connector *url.URL) bool {
	id, err := url.Parse(identifier)
	if err != nil || id.Scheme == "" || id.Opaque != "" || id.User != nil || id.Host == "" ||
		strings.ContainsRune(identifier, '#') {
		return false
	}
	if origin(id) != origin(connector) {
		return false
	}
	idPath, path := pathOf(id), pathOf(connector)
	if idPath == path && id.RawQuery == connector.RawQuery && id.ForceQuery == connector.ForceQuery {
		return true
	}
	if id.RawQuery != "" || id.ForceQuery || !strings.HasPrefix(path, idPath) {
		return false
	}
	return len(path) == len(idPath) || strings.HasSuffix(idPath, "/") || path[len(idPath)] == '/'
}

// origin returns the scheme and authority of u, normalized.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + egress.Authority(u)
}

// pathOf returns u's path as written, "/" when empty.
func pathOf(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// redactAll redacts each URL for an error message.
func redactAll(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redact(u)
	}
	return out
}
