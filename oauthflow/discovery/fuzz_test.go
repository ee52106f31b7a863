package discovery

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// FuzzServerMetadata feeds arbitrary documents to the authorization server
// metadata validation: it never panics, and whatever it accepts has the
// expected issuer, S256, and endpoints that pass the egress policy.
func FuzzServerMetadata(f *testing.F) {
	const issuer = "https://as.example/tenant"
	for _, s := range []string{
		asDocWith(issuer, `"code_challenge_methods_supported":["S256"]`),
		asDocWith(issuer, `"code_challenge_methods_supported":["plain"]`),
		asDocWith(issuer+"/", `"code_challenge_methods_supported":["S256"]`),
		asDocWith(issuer, `"code_challenge_methods_supported":["S256"],"authorization_endpoint":"javascript:alert(1)"`),
		asDocWith(issuer, `"code_challenge_methods_supported":["S256"],"token_endpoint":"https://169.254.169.254/"`),
		`{"issuer":"https://as.example/tenant","issuer":"https://evil.example"}`,
		`{"Issuer":"https://as.example/tenant"}`,
		`{"issuer":"https://as.example/tenant","scopes_supported":[1,2]}`,
		`[]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(strings.ReplaceAll(s, "{base}", "https://as.example")))
	}
	pol := egress.Policy{}
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := parseServerMetadata(data, issuer, pol)
		if err != nil {
			if md != nil {
				t.Fatal("a document and an error")
			}
			return
		}
		if md.Issuer != issuer {
			t.Fatalf("accepted issuer %q", md.Issuer)
		}
		if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
			t.Fatalf("accepted methods %q", md.CodeChallengeMethodsSupported)
		}
		if md.AuthorizationEndpoint == "" || md.TokenEndpoint == "" {
			t.Fatal("accepted without a required endpoint")
		}
		for _, e := range []string{md.AuthorizationEndpoint, md.TokenEndpoint, md.RegistrationEndpoint, md.RevocationEndpoint} {
			if e == "" {
				continue
			}
			u, err := egress.Check(e, pol)
			if err != nil || u.Scheme != "https" {
				t.Fatalf("accepted endpoint %q: %v", e, err)
			}
		}
	})
}

// FuzzResourceMetadata feeds arbitrary documents to the protected-resource
// metadata validation for a fixed connector: it never panics, and what it
// accepts names a resource on the connector's origin whose path is the
// connector's or a segment prefix of it.
func FuzzResourceMetadata(f *testing.F) {
	const connector = "https://mcp.example.com/mcp/v1"
	for _, s := range []string{
		prm(connector, "https://as.example"),
		prm("https://mcp.example.com/mcp", "https://as.example"),
		prm("https://mcp.example.com/mc", "https://as.example"),
		prm("https://MCP.example.com:443", "https://as.example"),
		prm("https://mcp.example.com/mcp/v1x", "https://as.example"),
		prm("https://mcp.example.com/mcp/v1?x", "https://as.example"),
		prm("https://mcp.example.com/mcp#", "https://as.example"),
		prm(connector),
		`{"resource":"https://mcp.example.com/mcp/v1","resource":"https://evil.example"}`,
		`{"resource":"https://mcp.example.com","authorization_servers":"https://as.example"}`,
		`[]`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	cu, err := url.Parse(connector)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := parseResourceMetadata(data, cu)
		if err != nil {
			if md != nil {
				t.Fatal("a document and an error")
			}
			return
		}
		n := len(md.AuthorizationServers)
		if n == 0 || n > maxAuthorizationServers {
			t.Fatalf("accepted %d authorization servers", n)
		}
		id, err := url.Parse(md.Resource)
		if err != nil {
			t.Fatalf("accepted unparsable resource %q", md.Resource)
		}
		if origin(id) != origin(cu) || id.Fragment != "" || id.User != nil {
			t.Fatalf("accepted resource %q for %s", md.Resource, connector)
		}
		switch p := pathOf(id); p {
		case "/", "/mcp", "/mcp/", "/mcp/v1":
		default:
			t.Fatalf("accepted resource %q (path %q) for %s", md.Resource, p, connector)
		}
	})
}
