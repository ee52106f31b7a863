package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBlocked is wrapped by every error for a destination the policy
// refuses, such as a private or link-local address.
var ErrBlocked = errors.New("blocked address")

// blockedRange is an address range the client may not reach, and why.
type blockedRange struct {
	prefix netip.Prefix
	why    string
}

// blockedV4 lists the IPv4 ranges that are not the public internet. It is
// wider than netip.Addr.IsPrivate, which misses 100.64.0.0/10 (Alibaba
// Cloud's metadata service is 100.100.100.200) and 0.0.0.0/8 (which Linux
// routes to the local host).
var blockedV4 = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking network"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // with 255.255.255.255, broadcast
}

// blockedV6 lists the IPv6 ranges that are not the public internet.
// IPv4-mapped, NAT64 and 6to4 addresses are judged by the IPv4 address
// they carry (see embeddedV4) before this list is consulted.
var blockedV6 = []blockedRange{
	{netip.MustParsePrefix("::/96"), "unspecified or IPv4-compatible"}, // ::, ::1, deprecated ::a.b.c.d
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Prefixes whose addresses embed an IPv4 address that a gateway will
// reach on the caller's behalf.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052
	nat64Tail = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215, local use
	sixToFour = netip.MustParsePrefix("2002::/16")      // RFC 3056
)

// blockReason says why the client may not connect to ip, or returns ""
// when it may.
func blockReason(ip netip.Addr) string {
	// Prefix.Contains never matches an address with a zone, so drop it:
	// fe80::1%eth0 is as link-local as fe80::1.
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return "invalid address"
	}
	if v4, via := embeddedV4(ip); via != "" {
		if why := blockReason(v4); why != "" {
			return why + " via " + via
		}
		return ""
	}
	ranges := blockedV4
	if ip.Is6() {
		ranges = blockedV6
	}
	for _, r := range ranges {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	return ""
}

// embeddedV4 returns the IPv4 address carried by a NAT64 or 6to4 address,
// and names the mechanism; via is "" for other addresses.
func embeddedV4(ip netip.Addr) (v4 netip.Addr, via string) {
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
	case nat64Tail.Contains(ip):
		// RFC 6052 §2.2: with a /48 prefix, bits 64-71 are the "u" octet.
		return netip.AddrFrom4([4]byte{b[6], b[7], b[9], b[10]}), "NAT64"
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4"
	}
	return netip.Addr{}, ""
}

// blockedError returns the error for a refused address; it names the
// address and the range, never anything else about the request.
func blockedError(ip netip.Addr, why string) error {
	return fmt.Errorf("%w %s (%s)", ErrBlocked, ip, why)
}

// isLoopback reports whether ip is a loopback address (127.0.0.0/8, ::1),
// counting IPv4-mapped forms but not NAT64 or 6to4 ones, which leave the
// host.
func isLoopback(ip netip.Addr) bool {
	return ip.WithZone("").Unmap().IsLoopback()
}

// parseHostIP parses host as an IP address the way resolvers and browsers
// do: canonical IPv4 and IPv6, and also the inet_aton forms that
// getaddrinfo and the WHATWG URL standard accept ("127.1", "0x7f.1",
// "2130706433", "017700000001"). canonical is false for the latter.
func parseHostIP(host string) (ip netip.Addr, canonical, ok bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true, true
	}
	ip, ok = parseLegacyIPv4(host)
	return ip, false, ok
}

// parseLegacyIPv4 parses the inet_aton forms of an IPv4 address: one to
// four dot-separated numbers, each decimal, octal (leading 0) or
// hexadecimal (leading 0x), the last one filling the remaining bytes.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parseLegacyNumber(p)
		last := i == len(parts)-1
		switch {
		case !ok, !last && n > 0xff, last && n>>(8*(4-i)) != 0:
			return netip.Addr{}, false
		case last:
			v |= n
		default:
			v |= n << (8 * (3 - i))
		}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseLegacyNumber parses one inet_aton component.
func parseLegacyNumber(s string) (uint64, bool) {
	base := 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, base, 32)
	return n, err == nil
}

// endsInNumber reports whether the WHATWG URL standard would treat host as
// an IPv4 address: its last label is numeric. Such a host that does not
// parse is not a host name either.
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if len(last) > 1 && (last[:2] == "0x" || last[:2] == "0X") {
		return strings.Trim(last[2:], "0123456789abcdefABCDEF") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}
