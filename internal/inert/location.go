package inert

import (
	"net"
	"net/url"
	"strings"
)

// Paths relates a request at the gateway to the request it became at the
// API, so that a URL the API answers with can be mapped back.
type Paths struct {
	// Base is the connector's API base URL.
	Base *url.URL
	// API is the URL the request went to: Base's origin, the mapped path
	// and the query.
	API *url.URL
	// Prefix is the escaped gateway path that stands for Base, for
	// example /connectors/github/api.
	Prefix string
	// Gateway is the request's escaped path at the gateway: Prefix and
	// the rest of the path.
	Gateway string
}

// location maps an API's Location (RFC 9110 section 10.2.2) onto the
// gateway. A URL under the API's base becomes a reference to the same
// resource through the gateway, relative to the request, so that it
// holds whatever prefix a site strips before the gateway sees the path.
// Any other URL is refused: on the gateway's origin, a redirect there
// would be an open redirect that the API chooses, and a link to the API
// itself would bypass the gateway and its credential.
func (p *Paths) location(value string) (string, bool) {
	ref, err := url.Parse(value)
	if err != nil || p == nil {
		return "", false
	}
	target := p.API.ResolveReference(ref)
	rest, ok := p.under(target)
	if !ok {
		return "", false
	}
	mapped := relativeRef(p.Gateway, p.Prefix+rest)
	if target.ForceQuery || target.RawQuery != "" {
		mapped += "?" + target.RawQuery
	}
	if target.Fragment != "" {
		mapped += "#" + target.EscapedFragment()
	}
	return mapped, true
}

// under returns the escaped path of target below the API's base, if
// target is on the base's origin and under its path, and has no dot
// segment, which a browser would resolve out of the API's part of the
// gateway, and the gateway would refuse. User info is refused: the
// gateway never sends any.
func (p *Paths) under(target *url.URL) (string, bool) {
	if target.Scheme != p.Base.Scheme || target.User != nil || !strings.EqualFold(HostPort(target), HostPort(p.Base)) {
		return "", false
	}
	rest, ok := strings.CutPrefix(target.EscapedPath(), strings.TrimSuffix(p.Base.EscapedPath(), "/"))
	if !ok || (rest != "" && rest[0] != '/') || Climbs(rest) {
		return "", false
	}
	return rest, true
}

// HostPort is u's host and port, with the scheme's default port made
// explicit: what to dial, and what compares equal for https://h and
// https://h:443.
func HostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// relativeRef returns a relative reference (RFC 3986 section 4.2) that
// resolves against a URL with path from to one with path to, both
// absolute and escaped: up from from's directory to a directory that
// holds to, then down. It starts with "./" where the reference would
// otherwise be empty, absolute, network-path, or open with a segment
// that reads as a scheme.
func relativeRef(from, to string) string {
	dir := from[:strings.LastIndex(from, "/")+1]
	up := ""
	for !strings.HasPrefix(to, dir) {
		dir = dir[:strings.LastIndex(dir[:len(dir)-1], "/")+1]
		up += "../"
	}
	down := to[len(dir):]
	first, _, _ := strings.Cut(down, "/")
	if up == "" && (down == "" || down[0] == '/' || strings.Contains(first, ":")) {
		down = "./" + down
	}
	return up + down
}

// Climbs reports whether an escaped path has a "." or ".." segment, also
// one that is percent-encoded, encoded twice, or hidden behind an encoded
// slash or backslash, any of which an API or a browser might decode before
// it resolves the path.
func Climbs(escaped string) bool {
	for seg := range strings.SplitSeq(escaped, "/") {
		for range 3 {
			d, err := url.PathUnescape(seg)
			if err != nil || d == seg {
				break
			}
			seg = d
		}
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '/' || r == '\\' }) {
			if part == "." || part == ".." {
				return true
			}
		}
	}
	return false
}
