package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLength is the longest URL Check accepts.
const MaxURLLength = 2048

// ErrNotAllowed is wrapped by every error Check returns for a URL the
// policy refuses, except blocked addresses, which wrap ErrBlocked.
var ErrNotAllowed = errors.New("url not allowed")

// Check parses raw and applies the static part of the policy: what can be
// decided from the URL alone, before it is fetched or handed to a browser
// (an authorization endpoint, for instance).
//
// The URL must be absolute with a host, at most MaxURLLength bytes, made
// of the characters RFC 3986 allows (no spaces, control or non-ASCII
// characters, no backslash), without userinfo, fragment, IPv6 zone or
// percent-encoded host. Its scheme must be https, or http for a Trusted
// authority or, with AllowLoopbackHTTP, a loopback host. A host that is
// an IP address must not be blocked (unless trusted, or loopback with
// AllowLoopbackHTTP), and IPv4 addresses must be in canonical dotted
// decimal: "127.1" and "0x7f.0.0.1" are refused, since browsers and
// resolvers read them differently from a host name.
//
// Errors name the offending part, never the whole URL.
func Check(raw string, p Policy) (*url.URL, error) {
	return p.compile().check(raw)
}

// Authority returns u's host and port in the form Policy.Trusted expects,
// with the scheme's default port made explicit.
func Authority(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	return authority(u.Hostname(), port)
}

// defaultPort returns the port a scheme implies.
func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// check implements Check.
func (c *policy) check(raw string) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrNotAllowed, MaxURLLength)
	}
	if i := strings.IndexFunc(raw, notURLChar); i >= 0 {
		return nil, fmt.Errorf("%w: character %q at offset %d", ErrNotAllowed, raw[i], i)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrNotAllowed)
	}
	if err := c.checkShape(u); err != nil {
		return nil, err
	}
	if u.Fragment != "" || strings.ContainsRune(raw, '#') {
		return nil, fmt.Errorf("%w: fragment", ErrNotAllowed)
	}
	if err := c.checkHost(u); err != nil {
		return nil, err
	}
	if strings.ContainsRune(rawAuthority(raw), '%') {
		// url.Parse decodes some escapes in hosts; a browser may not.
		return nil, fmt.Errorf("%w: percent-encoded host", ErrNotAllowed)
	}
	return u, nil
}

// checkShape applies the rules that the client also enforces on every
// request: absolute, a host, no userinfo, and the scheme rules.
func (c *policy) checkShape(u *url.URL) error {
	switch {
	case u.Scheme == "":
		return fmt.Errorf("%w: not absolute", ErrNotAllowed)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%w: scheme %q (https required)", ErrNotAllowed, u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("%w: no host", ErrNotAllowed)
	case u.User != nil:
		return fmt.Errorf("%w: userinfo", ErrNotAllowed)
	case u.Scheme == "https":
	case c.isTrusted(Authority(u)):
	case c.allowLoopback && IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("%w: http to %q (https required)", ErrNotAllowed, u.Hostname())
	}
	return nil
}

// checkHost refuses hosts that cannot be fetched safely or mean different
// things to different parsers.
func (c *policy) checkHost(u *url.URL) error {
	host := u.Hostname()
	if port := u.Port(); port != "" && !validPort(port) {
		return fmt.Errorf("%w: port %q", ErrNotAllowed, port)
	}
	if strings.ContainsRune(host, '%') {
		return fmt.Errorf("%w: IPv6 zone", ErrNotAllowed)
	}
	if c.isTrusted(Authority(u)) {
		return nil
	}
	ip, canonical, isIP := parseHostIP(host)
	switch {
	case isIP && !canonical:
		return fmt.Errorf("%w: non-canonical IPv4 address %q", ErrNotAllowed, host)
	case isIP:
		return c.checkIP(ip)
	case endsInNumber(host):
		return fmt.Errorf("%w: invalid IPv4 address %q", ErrNotAllowed, host)
	case !validHostName(host):
		return fmt.Errorf("%w: invalid host name %q", ErrNotAllowed, host)
	case isLocalhostName(host) && !c.allowLoopback:
		return fmt.Errorf("%w %s (loopback)", ErrBlocked, host)
	}
	return nil
}

// checkIP refuses a blocked address unless it is loopback and loopback is
// allowed.
func (c *policy) checkIP(ip netip.Addr) error {
	if c.allowLoopback && isLoopback(ip) {
		return nil
	}
	if why := blockReason(ip); why != "" {
		return blockedError(ip, why)
	}
	return nil
}

// notURLChar reports a rune that RFC 3986 does not allow anywhere in a
// URI: anything but unreserved, reserved and '%'.
func notURLChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("-._~:/?#[]@!$&'()*+,;=%", r)
}

// rawAuthority returns the authority part of a URL string as written,
// before url.Parse decodes it.
func rawAuthority(raw string) string {
	_, rest, ok := strings.Cut(raw, "//")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// validPort reports whether s is a port number from 1 to 65535.
func validPort(s string) bool {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' || n > 65535 {
			return false
		}
		n = n*10 + int(r-'0')
	}
	return s != "" && n >= 1 && n <= 65535
}

// validHostName reports whether host is a DNS name: labels of letters,
// digits, hyphens and underscores, 1 to 63 bytes each, 253 in all.
func validHostName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if strings.IndexFunc(label, notHostChar) >= 0 {
			return false
		}
	}
	return true
}

// notHostChar reports a rune that may not appear in a host name label.
func notHostChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
}

// isLocalhostName reports whether host is "localhost" or a name under it,
// which RFC 6761 §6.3 reserves for the loopback interface.
func isLocalhostName(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// IsLoopbackHost reports whether a URL host is a loopback IP literal in
// canonical form or a localhost name: the hosts AllowLoopbackHTTP lets use
// plain http.
func IsLoopbackHost(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Zone() == "" && isLoopback(ip)
	}
	return isLocalhostName(host)
}

// hostPort splits a dial address, keeping an IPv6 zone in the host.
func hostPort(addr string) (host string, port uint16, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	return host, uint16(n), nil
}
