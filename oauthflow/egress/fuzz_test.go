package egress

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzCheck feeds arbitrary strings to Check: it never panics, and what it
// accepts under the strictest policy is an https URL with a host, without
// userinfo or fragment, whose host, if an IP address, is not blocked.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"https://as.example/authorize?x=1",
		"javascript:alert(1)",
		"https://2130706433/",
		"https://[::ffff:127.0.0.1]/",
		"https://[fe80::1%25eth0]/",
		"https://user@as.example/",
		"http://as.example/",
		"https://as.example:443/a#b",
		"https://0x7f.1/",
		"https://%C3%A9.example/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Check(raw, Policy{})
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.User != nil || u.Fragment != "" || u.Hostname() == "" || len(raw) > MaxURLLength {
			t.Fatalf("Check accepted %q", raw)
		}
		if strings.IndexFunc(raw, notURLChar) >= 0 {
			t.Fatalf("Check accepted %q with a forbidden character", raw)
		}
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); err == nil && blockReason(ip) != "" {
			t.Fatalf("Check accepted blocked %q", raw)
		}
		if ip, _, ok := parseHostIP(host); ok && blockReason(ip) != "" {
			t.Fatalf("Check accepted %q, which resolvers read as %s", raw, ip)
		}
	})
}
