// Package httpapi holds the rules of a connector's HTTP API as the gateway
// serves it under /connectors/{id}/api/: where a request goes, who may
// send it, and what of it reaches the API. The root package wires these
// rules to Caddy's reverse proxy, which carries the request.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/inert"
)

// Route reports whether path is on a connector's API,
// /connectors/{id}/api or below, and names the connector. Its host routes
// these paths to the API before any router that cleans paths, since a
// . or .. segment must be refused here (see Target), not redirected.
func Route(path string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/connectors/")
	if !ok {
		return "", false
	}
	id, tail, _ := strings.Cut(rest, "/")
	return id, tail == "api" || strings.HasPrefix(tail, "api/")
}

// Target maps a request to /connectors/{id}/api{rest} onto the API base:
// the base's origin, base path + rest escaped as the agent escaped it, and
// the request's query. A rest with a . or .. segment could climb out of
// the base path, on the API or on a proxy before it, and is refused.
func Target(base *url.URL, id string, u *url.URL) (*url.URL, error) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/connectors/"+id+"/api")
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, fmt.Errorf("the path must start with /connectors/%s/api/ written without escapes", id)
	}
	if inert.Climbs(rest) {
		return nil, errors.New("the path has a . or .. segment, which could leave the API's base path")
	}
	escaped := base.EscapedPath()
	if rest != "" {
		escaped = strings.TrimSuffix(escaped, "/") + rest
	}
	if escaped == "" {
		escaped = "/"
	}
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, fmt.Errorf("the path is badly escaped: %v", err)
	}
	return &url.URL{Scheme: base.Scheme, Host: base.Host, Path: path, RawPath: escaped, RawQuery: u.RawQuery}, nil
}

// Access is the decision on one request to a connector's API.
type Access int

const (
	// Hidden: the connector does not exist, has no API, or the caller has
	// no grant of it; the answer must not tell these apart.
	Hidden Access = iota
	// ReadOnly: the caller's grant is read-only and the method is not
	// safe.
	ReadOnly
	// Allowed: the request may go.
	Allowed
	// Disabled: an admin disabled the connector; nothing goes to its API
	// and its credential is not used.
	Disabled
)

// Decide judges a request with method to connector c (nil when it does
// not exist) by a caller whose grant of the whole connector is whole and,
// if so, writable. An API is everything behind the connector's credential,
// so it takes a grant of the whole connector, one that lists it in
// connectors: a grant of one of its tools must not open it.
func Decide(c *connectors.Connector, whole, writable bool, method string) Access {
	switch {
	case c == nil || c.API == nil || !whole:
		return Hidden
	case c.Disabled:
		return Disabled
	case !SafeMethod(method) && !writable:
		return ReadOnly
	}
	return Allowed
}

// SafeMethod reports whether method is safe (RFC 9110 section 9.2.1): the
// only ones a read-only grant allows, since the gateway cannot tell what
// any other does to the API.
func SafeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// callerCredentials are the request headers that carry the caller's own
// credentials to the gateway. None of them reaches an API: the connector's
// credential takes their place (no token passthrough).
var callerCredentials = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// methodOverrides are the request headers by which many frameworks let a
// request stand for another method (a GET that the API runs as a DELETE).
// None reaches an API: the method the gateway checked against the grant
// is the method the API gets.
var methodOverrides = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// Outbound is r on its way to the API, on ctx: at target's path, without
// the caller's credentials, without any header that credential (the
// connector's, which the transport adds) sets, and without method
// overrides.
func Outbound(ctx context.Context, r *http.Request, target *url.URL, credential http.Header) *http.Request {
	out := r.Clone(ctx)
	out.URL.Path, out.URL.RawPath = target.Path, target.RawPath
	for _, name := range callerCredentials {
		out.Header.Del(name)
	}
	for _, name := range methodOverrides {
		out.Header.Del(name)
	}
	for name := range credential {
		out.Header.Del(name)
	}
	return out
}
