package egress

import (
	"net/netip"
	"testing"
)

func TestBlockReason(t *testing.T) {
	for _, tc := range []struct {
		ip      string
		blocked bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"100.63.255.255", false},
		{"100.64.0.1", true},
		{"100.100.100.200", true},
		{"0.1.2.3", true},
		{"0.0.0.0", true},
		{"10.0.0.1", true},
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"169.254.169.254", true},
		{"172.15.255.255", false},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.0", false},
		{"192.168.1.1", true},
		{"198.18.0.1", true},
		{"198.20.0.1", false},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		{"2606:4700::1111", false},
		{"::", true},
		{"::1", true},
		{"::127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::a9fe:a9fe", true},
		{"64:ff9b::808:808", false},
		{"64:ff9b:1:a9fe:a9:fe00::", true}, // 169.254.169.254 in the /48 layout
		{"64:ff9b:1:808:8:800::", false},   // 8.8.8.8 in the /48 layout
		{"2002:a9fe:a9fe::", true},
		{"2002:0a00:0001::1", true},
		{"2002:0808:0808::1", false},
		{"fc00::1", true},
		{"fd00:ec2::254", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fec0::1", true},
		{"ff02::1", true},
		{"100::1", true},
	} {
		why := blockReason(netip.MustParseAddr(tc.ip))
		if (why != "") != tc.blocked {
			t.Errorf("blockReason(%s) = %q, want blocked=%v", tc.ip, why, tc.blocked)
		}
	}
}

func TestParseHostIP(t *testing.T) {
	for _, tc := range []struct {
		host      string
		want      string
		canonical bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"2130706433", "127.0.0.1", false},
		{"0x7f.1", "127.0.0.1", false},
		{"0X7F.0.0.1", "127.0.0.1", false},
		{"017700000001", "127.0.0.1", false},
		{"127.1", "127.0.0.1", false},
		{"127.0.1", "127.0.0.1", false},
		{"0177.0.0.01", "127.0.0.1", false},
		{"169.254.43518", "169.254.169.254", false},
		{"0", "0.0.0.0", false},
		{"127.0.0.1.", "127.0.0.1", false},
		{"4294967295", "255.255.255.255", false},
		{"::1", "::1", true},
		{"4294967296", "", false},
		{"256.0.0.1", "", false},
		{"1.2.3.4.5", "", false},
		{"1..2", "", false},
		{"08", "", false},
		{"0x", "", false},
		{"example.com", "", false},
		{"+1", "", false},
	} {
		ip, canonical, ok := parseHostIP(tc.host)
		if ok != (tc.want != "") || ok && (ip.String() != tc.want || canonical != tc.canonical) {
			t.Errorf("parseHostIP(%q) = %v, %v, %v; want %q, %v", tc.host, ip, canonical, ok, tc.want, tc.canonical)
		}
	}
}
