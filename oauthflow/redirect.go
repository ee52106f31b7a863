package oauthflow

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// origin is a scheme, a lowercase host and a port: what a redirect_url
// must match exactly (RFC 6454), so that the callback is never an open
// redirector (RFC 9700 §4.11.1).
type origin struct{ scheme, host, port string }

// originOf returns u's origin, with the scheme's default port spelled out.
func originOf(u *url.URL) origin {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return origin{u.Scheme, strings.ToLower(u.Hostname()), port}
}

// parseOrigin parses an allowed origin, "scheme://host[:port]" with at
// most a "/" path.
func parseOrigin(raw string) (origin, error) {
	u, err := parseAbsolute(raw)
	if err != nil {
		return origin{}, err
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return origin{}, fmt.Errorf("%q must be an origin, scheme://host[:port]", raw)
	}
	return originOf(u), nil
}

// parseAbsolute parses an absolute http(s) URL with a host, no user info
// and nothing but printable ASCII: no white space, CR or LF, no backslash
// that a browser would read as a slash.
func parseAbsolute(raw string) (*url.URL, error) {
	if len(raw) > 2048 || !visible(raw) || strings.ContainsRune(raw, '\\') {
		return nil, fmt.Errorf("%q is too long, or has spaces, control characters or backslashes", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q has user info", u.Redacted())
	}
	return u, nil
}

// checkRedirect checks a redirect_url given to Start: empty, or an
// absolute URL on the public URL's origin or an allowed one.
func (m *Manager) checkRedirect(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := parseAbsolute(raw)
	if err != nil || !slices.Contains(m.origins, originOf(u)) {
		return ErrBadRedirect
	}
	return nil
}
