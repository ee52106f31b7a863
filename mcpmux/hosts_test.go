package mcpmux

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOnLoopback tells the listener's address apart as the Host check
// needs it: loopback in IPv4, IPv6 and IPv4 mapped into IPv6 (a
// dual-stack listener), whatever the address's type.
func TestOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 9, 8, 7).To4(), Port: 80}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 80}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 80}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80}, false},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 80}, false},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}, false},
		{&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}, true},
		{&net.UnixAddr{Name: "/run/mcpgate.sock", Net: "unix"}, false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, tc.addr))
		if got := onLoopback(r); got != tc.want {
			t.Errorf("onLoopback(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
