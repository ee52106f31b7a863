package mcpmux

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// hostPolicy says which names a request may give in Host and Origin, to
// defeat DNS rebinding: a page on evil.example resolves its name to the
// gateway's address, and the browser then sends Host: evil.example (and
// an Origin to match) to the gateway. Loopback names are always the
// gateway's own, since no page can rebind them.
type hostPolicy struct {
	names     map[string]bool // exact host names, lower case, no port
	wildcards []string        // ".example.com" for "*.example.com"
}

// newHostPolicy reads host names, each exact or "*.suffix". A wildcard
// covers the names below the suffix, not the suffix itself: "*.example.com"
// allows "mcp.example.com" but not "example.com", as in TLS certificates.
func newHostPolicy(hosts []string) hostPolicy {
	// Names compare in lower case and without a trailing dot, since DNS
	// ignores both: "Example.COM." is the name "example.com".
	p := hostPolicy{names: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasPrefix(suffix, ".") {
			p.wildcards = append(p.wildcards, suffix)
			continue
		}
		p.names[h] = true
	}
	return p
}

// configured reports whether any name was given.
func (p hostPolicy) configured() bool {
	return len(p.names) > 0 || len(p.wildcards) > 0
}

// allows reports whether a host name (no port) is the gateway's own.
func (p hostPolicy) allows(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if isLoopbackName(name) || p.names[name] {
		return true
	}
	for _, w := range p.wildcards {
		if len(name) > len(w) && strings.HasSuffix(name, w) {
			return true
		}
	}
	return false
}

// check returns why a request's Host or Origin is refused, or "". A
// gateway listening on loopback with no configured names accepts only
// loopback names; one on another address with no configured names leaves
// the Host to Caddy's site matching, which routed the request here.
func (p hostPolicy) check(r *http.Request) string {
	if !p.configured() && !onLoopback(r) {
		return ""
	}
	// The Host and Origin are the attacker's text: quoted, so that no
	// control character reaches the answer, and cut, so that its size is
	// the gateway's to decide.
	if !p.allows(hostname(r.Host)) {
		return "the request's Host " + strconv.Quote(textcut.Prefix(r.Host, 100)) + " is not one of the gateway's names (public_url, allowed_hosts or loopback)"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	// "null", the Origin of sandboxed frames and file: pages, has no host
	// and is refused: no such page is the gateway's own.
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !p.allows(u.Hostname()) {
		return "the request's Origin " + strconv.Quote(textcut.Prefix(origin, 100)) + " is not one of the gateway's names (public_url, allowed_hosts or loopback)"
	}
	return ""
}

// hostname strips the port from a Host header.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// isLoopbackName reports whether a host name can only mean this machine.
func isLoopbackName(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true // RFC 6761 section 6.3
	}
	ip, err := netip.ParseAddr(name)
	return err == nil && ip.IsLoopback()
}

// onLoopback reports whether the request came in on a loopback address.
func onLoopback(r *http.Request) bool {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	// A TCP listener's, read without making a string of it on every
	// request. IsLoopback takes a dual-stack listener's ::ffff:127.0.0.1
	// as 127.0.0.1.
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	// Unmap, so that a dual-stack listener's ::ffff:127.0.0.1 counts.
	ap, err := netip.ParseAddrPort(addr.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
