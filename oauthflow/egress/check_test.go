package egress

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	loop := Policy{AllowLoopbackHTTP: true}
	trusted := Policy{Trusted: []string{"mcp.internal:8080", "10.0.0.5", "[fd00::5]:9000"}}
	long := "https://as.example/" + strings.Repeat("a", MaxURLLength)
	for _, tc := range []struct {
		name    string
		raw     string
		policy  Policy
		wantErr string // "" means allowed
	}{
		{"https", "https://as.example/authorize?x=1", Policy{}, ""},
		{"https port", "https://as.example:8443/authorize", Policy{}, ""},
		{"https upper scheme", "HTTPS://as.example/authorize", Policy{}, ""},
		{"https public ip", "https://8.8.8.8/", Policy{}, ""},
		{"https public v6", "https://[2606:4700::1111]/", Policy{}, ""},
		{"javascript", "javascript:alert(1)", Policy{}, `scheme "javascript"`},
		{"javascript with slashes", "javascript://as.example/%0aalert(1)", Policy{}, `scheme "javascript"`},
		{"vbscript", "vbscript:msgbox(1)", Policy{}, `scheme "vbscript"`},
		{"data", "data:text/html;base64,PHNjcmlwdD4=", Policy{}, `scheme "data"`},
		{"data html", "data:text/html,<script>alert(1)</script>", Policy{}, "character"},
		{"file", "file:///etc/passwd", Policy{}, `scheme "file"`},
		{"ftp", "ftp://as.example/", Policy{}, `scheme "ftp"`},
		{"ws", "wss://as.example/", Policy{}, `scheme "wss"`},
		{"http public", "http://as.example/authorize", Policy{}, "https required"},
		{"http public loopback mode", "http://as.example/authorize", loop, "https required"},
		{"http 10/8 loopback mode", "http://10.0.0.1/", loop, "https required"},
		{"http loopback", "http://127.0.0.1:8080/authorize", loop, ""},
		{"http loopback v6", "http://[::1]:8080/authorize", loop, ""},
		{"http localhost", "http://localhost:8080/authorize", loop, ""},
		{"http loopback not allowed", "http://127.0.0.1:8080/", Policy{}, "https required"},
		{"https loopback not allowed", "https://127.0.0.1/", Policy{}, "blocked address 127.0.0.1"},
		{"https localhost not allowed", "https://localhost/", Policy{}, "blocked address localhost"},
		{"https sub.localhost", "https://a.localhost/", Policy{}, "blocked address a.localhost"},
		{"http trusted", "http://mcp.internal:8080/mcp", trusted, ""},
		{"http trusted other port", "http://mcp.internal:8081/mcp", trusted, "https required"},
		{"http trusted private ip", "http://10.0.0.5/mcp", trusted, ""},
		{"https trusted private ip", "https://10.0.0.5/mcp", trusted, ""},
		{"trusted v6", "http://[fd00::5]:9000/", trusted, ""},
		{"untrusted private ip", "https://10.0.0.6/", trusted, "blocked address 10.0.0.6"},
		{"metadata ip", "https://169.254.169.254/latest/meta-data/", Policy{}, "blocked address 169.254.169.254"},
		{"alibaba metadata", "https://100.100.100.200/", Policy{}, "blocked address 100.100.100.200"},
		{"ula", "https://[fd00:ec2::254]/", Policy{}, "blocked address fd00:ec2::254"},
		{"decimal ip", "https://2130706433/", Policy{}, "non-canonical IPv4"},
		{"hex ip", "https://0x7f.1/", Policy{}, "non-canonical IPv4"},
		{"octal ip", "https://017700000001/", Policy{}, "non-canonical IPv4"},
		{"short ip", "https://127.1/", Policy{}, "non-canonical IPv4"},
		{"short ip loopback mode", "https://127.1/", loop, "non-canonical IPv4"},
		{"bad ip", "https://1.2.3.256/", Policy{}, "invalid IPv4"},
		{"zero ip", "https://0.0.0.0/", Policy{}, "blocked address 0.0.0.0"},
		{"this network", "https://0.1.2.3/", Policy{}, "blocked address 0.1.2.3"},
		{"unspecified v6", "https://[::]/", Policy{}, "blocked address ::"},
		{"mapped loopback", "https://[::ffff:127.0.0.1]/", Policy{}, "blocked address ::ffff:127.0.0.1"},
		{"mapped metadata", "https://[::ffff:169.254.169.254]/", Policy{}, "blocked address ::ffff:169.254.169.254"},
		{"nat64 metadata", "https://[64:ff9b::a9fe:a9fe]/", Policy{}, "blocked address 64:ff9b::a9fe:a9fe"},
		{"6to4 metadata", "https://[2002:a9fe:a9fe::]/", Policy{}, "blocked address 2002:a9fe:a9fe::"},
		{"zone", "https://[fe80::1%25eth0]/", Policy{}, "IPv6 zone"},
		{"link-local v6", "https://[fe80::1]/", Policy{}, "blocked address fe80::1"},
		{"userinfo", "https://user:s3cr3t@as.example/", Policy{}, "userinfo"},
		{"userinfo at", "https://as.example@evil.example/", Policy{}, "userinfo"},
		{"backslash", `https://evil.example\@as.example/`, Policy{}, "character"},
		{"fragment", "https://as.example/authorize#x", Policy{}, "fragment"},
		{"empty fragment", "https://as.example/authorize#", Policy{}, "fragment"},
		{"space", "https://as.example/author ize", Policy{}, "character"},
		{"crlf", "https://as.example/\r\nSet-Cookie: x", Policy{}, "character"},
		{"tab", "https://as.example/\t", Policy{}, "character"},
		{"nul", "https://as.example/\x00", Policy{}, "character"},
		{"quote", `https://as.example/"`, Policy{}, "character"},
		{"backtick", "https://as.example/`id`", Policy{}, "character"},
		{"non-ascii host", "https://аs.example/", Policy{}, "character"},
		{"percent host", "https://%6c%6fcalhost/", Policy{}, "malformed"},
		{"relative", "/authorize", Policy{}, "not absolute"},
		{"scheme relative", "//as.example/authorize", Policy{}, "not absolute"},
		{"no host", "https:///authorize", Policy{}, "no host"},
		{"opaque", "https:as.example", Policy{}, "no host"},
		{"empty", "", Policy{}, "not absolute"},
		{"bad port", "https://as.example:0/", Policy{}, "port"},
		{"big port", "https://as.example:65536/", Policy{}, "port"},
		{"underscore host", "https://my_host.example/", Policy{}, ""},
		{"bad label", "https://-a.example/", Policy{}, "invalid host name"},
		{"too long", long, Policy{}, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Check(tc.raw, tc.policy)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want allowed", tc.raw, err)
				}
				if u == nil || u.Host == "" {
					t.Fatalf("Check(%q) returned %v", tc.raw, u)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) allowed, want error containing %q", tc.raw, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check(%q) = %q, want it to contain %q", tc.raw, err, tc.wantErr)
			}
			if !errors.Is(err, ErrNotAllowed) && !errors.Is(err, ErrBlocked) {
				t.Fatalf("Check(%q) = %v, wraps neither ErrNotAllowed nor ErrBlocked", tc.raw, err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("Check(%q) = %q leaks userinfo", tc.raw, err)
			}
		})
	}
}

func TestAuthority(t *testing.T) {
	for raw, want := range map[string]string{
		"https://MCP.Example.com/mcp":   "mcp.example.com:443",
		"http://mcp.example.com/mcp":    "mcp.example.com:80",
		"http://10.0.0.5:9000/mcp":      "10.0.0.5:9000",
		"https://[fd00::5]:8443/mcp":    "[fd00::5]:8443",
		"https://[FD00::5]/mcp?x=1#abc": "[fd00::5]:443",
	} {
		u := mustParse(t, raw)
		if got := Authority(u); got != want {
			t.Errorf("Authority(%q) = %q, want %q", raw, got, want)
		}
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
