// Package egress is the HTTP client for URLs that mcpgate learned from
// untrusted peers: OAuth metadata documents and the authorization, token,
// registration and revocation endpoints they name.
//
// Every such URL is attacker-controlled input (MCP Security Best Practices,
// "Server-Side Request Forgery"; RFC 9728 §7.7). The client therefore speaks
// HTTPS only, never follows redirects, refuses to connect to internal
// addresses, checking the address of the socket actually dialled so that
// DNS answers and address encodings cannot slip past, and caps the time and
// size of every exchange. URLs an admin configured are trusted by authority
// (Policy.Trusted), the only way to reach a private or plain-HTTP server.
package egress

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Defaults for a Policy's zero fields.
const (
	// DefaultTimeout bounds one request, from dialling to the end of the body.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBody bounds a response body: 1 MiB.
	DefaultMaxBody int64 = 1 << 20
)

// Policy says where the egress client may go and how much it may spend.
type Policy struct {
	// AllowLoopbackHTTP lets discovered URLs use http:// on loopback hosts
	// (127.0.0.0/8, ::1, "localhost") and lets the client connect to
	// loopback addresses. It is the connector option insecure_loopback,
	// for tests and development only. It never opens other private ranges.
	AllowLoopbackHTTP bool
	// Trusted are the "host[:port]" authorities an admin configured, such
	// as the connector URL's host. Requests to them may use http:// and
	// may reach private and loopback addresses. An entry without a port
	// stands for ports 80 and 443. Use Authority to build an entry from
	// a URL.
	Trusted []string
	// Timeout bounds each request as a whole: dial, TLS, headers and
	// body. It defaults to DefaultTimeout (10s) when 0 or negative.
	Timeout time.Duration
	// MaxBody is the largest response body the client reads; reading
	// beyond it is an error, never a silent truncation. It defaults to
	// DefaultMaxBody (1 MiB) when 0 or negative.
	MaxBody int64
	// LookupNetIP resolves host names, with the signature of
	// (*net.Resolver).LookupNetIP; nil means net.DefaultResolver. Tests
	// set it to map names to chosen addresses. Whatever it answers, the
	// dialer checks the address of the socket it connects.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// policy is a Policy with defaults applied and Trusted indexed.
type policy struct {
	allowLoopback bool
	trusted       map[string]bool
	timeout       time.Duration
	maxBody       int64
	lookup        func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// compile applies defaults and normalizes the trusted authorities.
func (p Policy) compile() *policy {
	c := &policy{
		allowLoopback: p.AllowLoopbackHTTP,
		trusted:       make(map[string]bool, len(p.Trusted)),
		timeout:       p.Timeout,
		maxBody:       p.MaxBody,
		lookup:        p.LookupNetIP,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.lookup == nil {
		c.lookup = net.DefaultResolver.LookupNetIP
	}
	for _, a := range p.Trusted {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			host = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
			c.trusted[authority(host, "80")] = true
			c.trusted[authority(host, "443")] = true
			continue
		}
		c.trusted[authority(host, port)] = true
	}
	return c
}

// isTrusted reports whether a "host:port" dial address or URL authority
// is one the admin configured.
func (c *policy) isTrusted(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	return err == nil && c.trusted[authority(host, port)]
}

// authority joins a host and port in the form trusted entries are kept in.
func authority(host, port string) string {
	return net.JoinHostPort(strings.ToLower(host), port)
}
