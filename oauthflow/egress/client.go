package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrRedirect is wrapped by the error for a redirect response, which the
// client never follows.
var ErrRedirect = errors.New("redirect not followed")

// maxHeaderBytes bounds the response headers the client reads.
const maxHeaderBytes = 64 << 10

// maxAddrs bounds how many resolved addresses one dial tries.
const maxAddrs = 8

// Client returns an HTTP client that enforces p on every request:
//
//   - the scheme rules of Check (https, or http for Trusted authorities and,
//     with AllowLoopbackHTTP, loopback hosts), and no userinfo;
//   - no redirects: a 3xx response with a Location is an error wrapping
//     ErrRedirect that names the status and the target host only, because
//     RFC 8414 §3.2 and RFC 9728 §3.2 require a 200 answer and a redirect
//     is how a checked URL turns into an unchecked one;
//   - the address of every socket is checked after DNS resolution, in the
//     dialer (net.Dialer.ControlContext), against the blocked ranges, so
//     that DNS rebinding and exotic address spellings cannot reach an
//     internal service; errors wrap ErrBlocked and name the address;
//   - Timeout for the whole exchange and MaxBody for the body, whose reads
//     fail beyond it; responses are never transparently decompressed, so a
//     small gzip body cannot expand past the cap;
//   - no proxy: HTTPS_PROXY and friends are ignored, because through a
//     proxy the proxy resolves names and the address check would see only
//     the proxy. Deployments that must use an egress proxy should filter
//     there (Smokescreen, for instance).
//
// Connections are kept alive and reused per authority.
func Client(p Policy) *http.Client {
	c := p.compile()
	base := &http.Transport{
		Proxy:                  nil,
		DialContext:            c.dial,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    c.timeout,
		ResponseHeaderTimeout:  c.timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConns:           32,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{
		Transport:     &transport{policy: c, base: base},
		CheckRedirect: refuseRedirect,
		Timeout:       c.timeout,
	}
}

// transport checks each request's URL, refuses redirects and caps bodies.
type transport struct {
	policy *policy
	base   *http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.policy.checkShape(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && loc != "" {
		resp.Body.Close()
		return nil, redirectError(resp.StatusCode, req.URL, loc)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.policy.maxBody, limit: t.policy.maxBody}
	return resp, nil
}

// CloseIdleConnections closes the kept-alive connections, for
// http.Client.CloseIdleConnections.
func (t *transport) CloseIdleConnections() {
	t.base.CloseIdleConnections()
}

// isRedirect reports whether status asks the client to go elsewhere.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirectError names the status and the target host, but not the path or
// query of the target, which may carry codes or tokens.
func redirectError(status int, from *url.URL, location string) error {
	target, err := from.Parse(location)
	if err != nil {
		return fmt.Errorf("%w: %d to a malformed location", ErrRedirect, status)
	}
	return fmt.Errorf("%w: %d to host %q", ErrRedirect, status, target.Host)
}

// refuseRedirect is the client's CheckRedirect. The transport already
// turns redirects into errors; this covers a 3xx the transport let by.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	return fmt.Errorf("%w: %d to host %q", ErrRedirect, status, req.URL.Host)
}

// dial resolves addr itself and connects to each address in turn; the
// dialer's control function checks every socket before it connects.
func (c *policy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("egress: network %q not allowed", network)
	}
	host, port, err := hostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := c.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: c.timeout, ControlContext: c.control(c.isTrusted(addr))}
	var first error
	for _, ip := range ips[:min(len(ips), maxAddrs)] {
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip, port).String())
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// resolve returns the addresses of host: itself if it is an IP address in
// any spelling a resolver accepts, else what the lookup function answers.
func (c *policy) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ip, _, ok := parseHostIP(host); ok {
		return []netip.Addr{ip}, nil
	}
	family := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
	ips, err := c.lookup(ctx, family, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("egress: no addresses for %q", host)
	}
	return ips, nil
}

// control returns the dialer's check of the socket address, which runs
// after resolution and before connect: the address that is checked is the
// address that is used. trusted skips it for an admin-configured authority.
func (c *policy) control(trusted bool) func(ctx context.Context, network, address string, _ syscall.RawConn) error {
	return func(ctx context.Context, network, address string, _ syscall.RawConn) error {
		if trusted {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w %q (unparsable)", ErrBlocked, address)
		}
		return c.checkIP(ap.Addr())
	}
}
