package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress/egresstest"
)

// TestDiscoveryOrder records the URLs discovery requests, in order, for
// each shape of resource and issuer: the order the MCP authorization spec
// sets over RFC 9728 and RFC 8414.
func TestDiscoveryOrder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		resource  string
		challenge *Challenge
		routes    map[string]reply
		want      []string
	}{
		{
			name:     "path resource, path issuer, last candidates",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp":                                  unauthorized(`Bearer realm="mcp"`),
				"/.well-known/oauth-protected-resource": {body: prm("{base}/mcp", "{base}/tenant-a")},
				"/tenant-a/.well-known/openid-configuration": {body: asDoc("{base}/tenant-a")},
			},
			want: []string{
				"POST /mcp",
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-protected-resource",
				"GET /.well-known/oauth-authorization-server/tenant-a",
				"GET /.well-known/openid-configuration/tenant-a",
				"GET /tenant-a/.well-known/openid-configuration",
			},
		},
		{
			name:     "path resource, path issuer, first candidates",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp": unauthorized(`Bearer realm="mcp"`),
				"/.well-known/oauth-protected-resource/mcp":        {body: prm("{base}/mcp", "{base}/tenant-a")},
				"/.well-known/oauth-authorization-server/tenant-a": {body: asDoc("{base}/tenant-a")},
			},
			want: []string{
				"POST /mcp",
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-authorization-server/tenant-a",
			},
		},
		{
			name:     "OIDC path insertion",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp": unauthorized(`Bearer realm="mcp"`),
				"/.well-known/oauth-protected-resource/mcp":   {body: prm("{base}/mcp", "{base}/tenant-a/")},
				"/.well-known/openid-configuration/tenant-a/": {body: asDoc("{base}/tenant-a/")},
			},
			want: []string{
				"POST /mcp",
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-authorization-server/tenant-a/",
				"GET /.well-known/openid-configuration/tenant-a/",
			},
		},
		{
			name:     "issuer without path",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp": unauthorized(""),
				"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "{base}")},
				"/.well-known/openid-configuration":         {body: asDoc("{base}")},
			},
			want: []string{
				"POST /mcp",
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-authorization-server",
				"GET /.well-known/openid-configuration",
			},
		},
		{
			name:     "root resource",
			resource: "/",
			routes: map[string]reply{
				"/":                                     unauthorized(`Bearer`),
				"/.well-known/oauth-protected-resource": {body: prm("{base}/", "{base}")},
				"/.well-known/oauth-authorization-server": {body: asDoc("{base}")},
			},
			want: []string{
				"POST /",
				"GET /.well-known/oauth-protected-resource",
				"GET /.well-known/oauth-authorization-server",
			},
		},
		{
			name:     "resource with query",
			resource: "/mcp?tenant=a",
			routes: map[string]reply{
				"/mcp": unauthorized(""),
				"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp?tenant=a", "{base}")},
				"/.well-known/oauth-authorization-server":   {body: asDoc("{base}")},
			},
			want: []string{
				"POST /mcp?tenant=a",
				"GET /.well-known/oauth-protected-resource/mcp?tenant=a",
				"GET /.well-known/oauth-authorization-server",
			},
		},
		{
			name:     "resource_metadata from the probe's challenge",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp":           unauthorized(`Basic realm="x", Bearer resource_metadata="{base}/meta/prm.json"`),
				"/meta/prm.json": {body: prm("{base}/mcp", "{base}")},
				"/.well-known/oauth-authorization-server": {body: asDoc("{base}")},
			},
			want: []string{
				"POST /mcp",
				"GET /meta/prm.json",
				"GET /.well-known/oauth-authorization-server",
			},
		},
		{
			name:      "challenge given: no probe",
			resource:  "/mcp",
			challenge: &Challenge{Scope: []string{"x"}},
			routes: map[string]reply{
				"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "{base}")},
				"/.well-known/oauth-authorization-server":   {body: asDoc("{base}")},
			},
			want: []string{
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-authorization-server",
			},
		},
		{
			name:     "unprotected answer to the probe",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp": {status: 200, ctype: "text/event-stream", body: "event: message\n"},
				"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "{base}")},
				"/.well-known/oauth-authorization-server":   {body: asDoc("{base}")},
			},
			want: []string{
				"POST /mcp", // initialize, then the initialized notification and tools/list
				"POST /mcp",
				"POST /mcp",
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-authorization-server",
			},
		},
		{
			name:     "405 and 410 fall through",
			resource: "/mcp",
			routes: map[string]reply{
				"/mcp": unauthorized(""),
				"/.well-known/oauth-protected-resource/mcp": {status: 405},
				"/.well-known/oauth-protected-resource":     {body: prm("{base}", "{base}/t")},
				"/.well-known/oauth-authorization-server/t": {status: 410},
				"/.well-known/openid-configuration/t":       {body: asDoc("{base}/t")},
			},
			want: []string{
				"POST /mcp",
				"GET /.well-known/oauth-protected-resource/mcp",
				"GET /.well-known/oauth-protected-resource",
				"GET /.well-known/oauth-authorization-server/t",
				"GET /.well-known/openid-configuration/t",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t, tc.routes)
			res, err := f.discover(tc.resource, tc.challenge)
			if err != nil {
				t.Fatalf("Discover: %v\nrequests: %q", err, f.requests())
			}
			if got := f.requests(); !slices.Equal(got, tc.want) {
				t.Fatalf("requests:\n got %q\nwant %q", got, tc.want)
			}
			if res.Server.TokenEndpoint != f.srv.URL+"/token" {
				t.Fatalf("token endpoint %q", res.Server.TokenEndpoint)
			}
		})
	}
}

// TestProbeRequest checks the shape of the probe: an MCP initialize POST.
func TestProbeRequest(t *testing.T) {
	f := newFakeServer(t, map[string]reply{
		"/mcp": unauthorized(`Bearer resource_metadata="{base}/prm", scope="a b"`),
		"/prm": {body: prm("{base}/mcp", "{base}")},
		"/.well-known/oauth-authorization-server": {body: asDoc("{base}")},
	})
	res, err := f.discover("/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.probes) != 1 {
		t.Fatalf("%d probes", len(f.probes))
	}
	p := f.probes[0]
	for header, want := range map[string]string{
		"Content-Type":         "application/json",
		"Accept":               "application/json, text/event-stream",
		"MCP-Protocol-Version": "2025-11-25",
		"Authorization":        "",
	} {
		if got := p.Header.Get(header); got != want {
			t.Errorf("probe %s = %q, want %q", header, got, want)
		}
	}
	var msg struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(f.bodies[0]), &msg); err != nil || msg.JSONRPC != "2.0" || msg.Method != "initialize" || msg.Params.ProtocolVersion != "2025-11-25" {
		t.Errorf("probe body %s: %v", f.bodies[0], err)
	}
	if !slices.Equal(res.Scopes, []string{"a", "b"}) {
		t.Errorf("scopes %q, want the challenge's", res.Scopes)
	}
}

func TestScopes(t *testing.T) {
	routes := map[string]reply{
		"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "{base}")},
		"/.well-known/oauth-authorization-server":   {body: asDoc("{base}")},
	}
	for _, tc := range []struct {
		challenge *Challenge
		want      []string
	}{
		{&Challenge{Scope: []string{"files:read"}}, []string{"files:read"}},
		{&Challenge{Error: "invalid_token"}, []string{"mcp:read", "mcp:write"}},
	} {
		res, err := newFakeServer(t, routes).discover("/mcp", tc.challenge)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Scopes, tc.want) {
			t.Errorf("challenge %+v: scopes %q, want %q", tc.challenge, res.Scopes, tc.want)
		}
	}
	routes["/.well-known/oauth-protected-resource/mcp"] = reply{body: `{"resource":"{base}/mcp","authorization_servers":["{base}"]}`}
	res, err := newFakeServer(t, routes).discover("/mcp", &Challenge{})
	if err != nil || len(res.Scopes) != 0 {
		t.Fatalf("no scopes anywhere: %q, %v", res.Scopes, err)
	}
}

// TestFetchFailures checks that only "no document" statuses fall through:
// an error on a specific candidate stops discovery before a less specific
// one is tried, and that redirects, wrong types, bad or ambiguous JSON and
// oversized documents are errors.
func TestFetchFailures(t *testing.T) {
	const prmPath = "/.well-known/oauth-protected-resource/mcp"
	const asPath = "/.well-known/oauth-authorization-server/t"
	goodPRM := reply{body: prm("{base}/mcp", "{base}/t")}
	huge := `{"resource":"{base}/mcp","authorization_servers":["{base}/t"],"pad":"` + strings.Repeat("x", 5<<20) + `"}`
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("{base}/as%d", i)
	}
	for _, tc := range []struct {
		name     string
		path     string
		reply    reply
		wantErr  string
		sentinel error
	}{
		{name: "PRM 500", path: prmPath, reply: reply{status: 500}, wantErr: "status 500"},
		{name: "PRM 503", path: prmPath, reply: reply{status: 503}, wantErr: "status 503"},
		{name: "PRM 400", path: prmPath, reply: reply{status: 400}, wantErr: "status 400"},
		{name: "PRM 401", path: prmPath, reply: reply{status: 401}, wantErr: "status 401"},
		{name: "PRM 204", path: prmPath, reply: reply{status: 204}, wantErr: "status 204"},
		{name: "PRM timeout", path: prmPath, reply: reply{body: prm("{base}/mcp", "{base}/t"), delay: 5 * time.Second}, wantErr: "GET"},
		{name: "PRM html", path: prmPath, reply: reply{ctype: "text/html", body: prm("{base}/mcp", "{base}/t")}, wantErr: "content type \"text/html\""},
		{name: "PRM no type", path: prmPath, reply: reply{ctype: " ", body: prm("{base}/mcp", "{base}/t")}, wantErr: "content type"},
		{name: "PRM json with charset", path: prmPath, reply: reply{ctype: "application/json; charset=utf-8", body: prm("{base}/mcp", "{base}/t")}},
		{name: "PRM bad JSON", path: prmPath, reply: reply{body: `{"resource":`}, wantErr: "invalid JSON"},
		{name: "PRM not an object", path: prmPath, reply: reply{body: `["x"]`}, wantErr: "not an object"},
		{name: "PRM wrong type", path: prmPath, reply: reply{body: `{"resource":1}`}, wantErr: "invalid JSON"},
		{name: "PRM duplicate resource", path: prmPath, reply: reply{body: `{"resource":"{base}/mcp","resource":"{base}/mcp","authorization_servers":["{base}/t"]}`}, wantErr: "duplicate member name"},
		{name: "PRM case-variant servers", path: prmPath, reply: reply{body: `{"resource":"{base}/mcp","authorization_servers":["{base}/t"],"Authorization_Servers":["https://evil.example"]}`}, wantErr: "differ only in case"},
		{name: "PRM case-variant alone", path: prmPath, reply: reply{body: `{"Resource":"{base}/mcp","authorization_servers":["{base}/t"]}`}, wantErr: `member "Resource" is not spelled "resource"`},
		{name: "PRM deep nesting", path: prmPath, reply: reply{body: `{"resource":"{base}/mcp","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`}, wantErr: "invalid JSON"},
		{name: "PRM 5 MB", path: prmPath, reply: reply{body: huge}, wantErr: "response larger than 1048576 bytes"},
		{name: "PRM 10000 servers", path: prmPath, reply: reply{body: prm("{base}/mcp", many...)}, wantErr: "10000 authorization_servers, more than 16"},
		{name: "PRM no servers", path: prmPath, reply: reply{body: `{"resource":"{base}/mcp"}`}, sentinel: ErrNoAuthorizationServer},
		{name: "PRM redirect", path: prmPath, reply: reply{status: 302, header: map[string]string{"Location": "http://169.254.169.254/latest/meta-data/"}}, sentinel: egress.ErrRedirect},
		{name: "AS 500", path: asPath, reply: reply{status: 500}, wantErr: "status 500"},
		{name: "AS 400", path: asPath, reply: reply{status: 400}, wantErr: "status 400"},
		{name: "AS redirect", path: asPath, reply: reply{status: 307, header: map[string]string{"Location": "https://other.example/.well-known/oauth-authorization-server"}}, wantErr: `307 to host "other.example"`},
		{name: "AS duplicate issuer", path: asPath, reply: reply{body: `{"issuer":"https://evil.example","issuer":"{base}/t"}`}, wantErr: `duplicate member name "issuer"`},
		{name: "AS case-variant issuer", path: asPath, reply: reply{body: `{"Issuer":"{base}/t","issuer":"https://evil.example"}`}, wantErr: "differ only in case"},
		{name: "AS capitalized issuer alone", path: asPath, reply: reply{body: `{"ISSUER":"{base}/t","code_challenge_methods_supported":["S256"],"authorization_endpoint":"{base}/a","token_endpoint":"{base}/t"}`}, wantErr: `member "ISSUER" is not spelled "issuer"`},
		{name: "AS NUL-suffixed member", path: asPath, reply: reply{body: asDocWith("{base}/t", `"code_challenge_methods_supported":["S256"],"token_endpoint":"{base}/token","token_endpoint\u0000":"https://evil.example/token"`)}},
		{name: "AS bad UTF-8", path: asPath, reply: reply{body: "{\"issuer\":\"\xff\"}"}, wantErr: "invalid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routes := map[string]reply{
				"/mcp":                                  unauthorized(""),
				prmPath:                                 goodPRM,
				"/.well-known/oauth-protected-resource": goodPRM,
				asPath:                                  {body: asDoc("{base}/t")},
				"/.well-known/openid-configuration/t":   {body: asDoc("{base}/t")},
				"/t/.well-known/openid-configuration":   {body: asDoc("{base}/t")},
			}
			routes[tc.path] = tc.reply
			f := newFakeServer(t, routes)
			start := time.Now()
			res, err := f.discover("/mcp", nil)
			if time.Since(start) > 4*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if tc.wantErr == "" && tc.sentinel == nil {
				if err != nil {
					t.Fatalf("Discover: %v", err)
				}
				if tc.name == "AS NUL-suffixed member" && res.Server.TokenEndpoint != f.srv.URL+"/token" {
					t.Fatalf("token endpoint %q", res.Server.TokenEndpoint)
				}
				return
			}
			if err == nil {
				t.Fatalf("Discover succeeded, want %q\nrequests %q", tc.wantErr, f.requests())
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Discover: %v, want %q", err, tc.wantErr)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("Discover: %v, want %v", err, tc.sentinel)
			}
			t.Log(err)
			if len(err.Error()) > 600 {
				t.Fatalf("error of %d bytes: %.200s…", len(err.Error()), err)
			}
			reqs := f.requests()
			if last := reqs[len(reqs)-1]; last != "GET "+tc.path {
				t.Fatalf("discovery went on after %s failed: %q", tc.path, reqs)
			}
		})
	}
}

// TestResourceMismatch checks RFC 9728 §3.3 end to end: a mismatched
// resource stops discovery before any authorization server request.
func TestResourceMismatch(t *testing.T) {
	for _, tc := range []struct {
		connector string
		resource  string
		ok        bool
	}{
		{"/mcpx", "{base}/mcp", false},
		{"/mcp", "https://other.example/mcp", false},
		{"/mcp", "{base}/mcp/", false},
		{"/mcp", "{base}/mcp#frag", false},
		{"/mcp", "", false},
		{"/mcp", "{base}/mcp", true},
		{"/mcp", "{base}", true},
		{"/mcp", "{base}/", true},
		{"/tenant/mcp", "{base}/tenant", true},
	} {
		f := newFakeServer(t, map[string]reply{
			"/.well-known/oauth-protected-resource" + tc.connector: {body: prm(tc.resource, "{base}")},
			"/.well-known/oauth-authorization-server":              {body: asDoc("{base}")},
		})
		_, err := f.discover(tc.connector, &Challenge{})
		if tc.ok {
			if err != nil {
				t.Errorf("connector %s, resource %s: %v", tc.connector, tc.resource, err)
			}
			continue
		}
		if !errors.Is(err, ErrResourceMismatch) {
			t.Errorf("connector %s, resource %s: %v, want ErrResourceMismatch", tc.connector, tc.resource, err)
			continue
		}
		if tc.resource != "" && (!strings.Contains(err.Error(), "does not match the connector URL") || !strings.Contains(err.Error(), tc.connector)) {
			t.Errorf("error %q does not name both URLs", err)
		}
		for _, r := range f.requests() {
			if strings.Contains(r, "authorization-server") {
				t.Errorf("connector %s, resource %s: requested %s after a mismatch", tc.connector, tc.resource, r)
			}
		}
	}
}

func TestResourceMatches(t *testing.T) {
	for _, tc := range []struct {
		id, connector string
		want          bool
	}{
		{"https://mcp.notion.com/mcp", "https://mcp.notion.com/mcp", true},
		{"https://MCP.Notion.com:443/mcp", "https://mcp.notion.com/mcp", true},
		{"HTTPS://mcp.notion.com/mcp", "https://mcp.notion.com:443/mcp", true},
		{"https://host", "https://host/mcp", true},
		{"https://host/", "https://host/mcp", true},
		{"https://host", "https://host/", true},
		{"https://host/", "https://host", true},
		{"https://host/a/b", "https://host/a/b/c", true},
		{"https://host/mcp", "https://host/mcp/", true},
		{"https://host/mcp", "https://host/mcp?tenant=a", true},
		{"https://host/mcp?tenant=a", "https://host/mcp?tenant=a", true},
		{"http://host:80/mcp", "http://host/mcp", true},
		{"https://host/mcp", "https://host/mcpx", false},
		{"https://host/mcp/", "https://host/mcp", false},
		{"https://host/mc", "https://host/mcp", false},
		{"https://host/mcp?tenant=b", "https://host/mcp?tenant=a", false},
		{"https://host/?x=1", "https://host/mcp", false},
		{"https://host/mcp/sub", "https://host/mcp", false},
		{"https://other/mcp", "https://host/mcp", false},
		{"https://host.evil/mcp", "https://host/mcp", false},
		{"http://host/mcp", "https://host/mcp", false},
		{"https://host:8443/mcp", "https://host/mcp", false},
		{"https://host:443/mcp", "https://host:8443/mcp", false},
		{"https://host/%6Dcp", "https://host/mcp", false},
		{"https://host/MCP", "https://host/mcp", false},
		{"https://host/mcp#x", "https://host/mcp", false},
		{"https://host/mcp#", "https://host/mcp", false},
		{"https://u@host/mcp", "https://host/mcp", false},
		{"/mcp", "https://host/mcp", false},
		{"//host/mcp", "https://host/mcp", false},
		{"https:host/mcp", "https://host/mcp", false},
		{"", "https://host/mcp", false},
		{"urn:mcp", "https://host/mcp", false},
	} {
		connector, err := egress.Check(tc.connector, egress.Policy{Trusted: []string{"host"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resourceMatches(tc.id, connector); got != tc.want {
			t.Errorf("resourceMatches(%q, %q) = %v, want %v", tc.id, tc.connector, got, tc.want)
		}
	}
}

// TestIssuerMismatch checks RFC 8414 §3.3: the issuer in the metadata must
// be the one the URL was built from, byte for byte.
func TestIssuerMismatch(t *testing.T) {
	for _, issuer := range []string{
		"https://honest.example",
		"{base}/tenant-a/",
		"{base}/tenant-A",
		"{base}/tenant-b",
		"{base}",
		"{base}/tenant-a/x",
		"HTTP://127.0.0.1/tenant-a",
		"",
	} {
		f := newFakeServer(t, map[string]reply{
			"/.well-known/oauth-protected-resource/mcp":        {body: prm("{base}/mcp", "{base}/tenant-a")},
			"/.well-known/oauth-authorization-server/tenant-a": {body: asDoc(issuer)},
			"/.well-known/openid-configuration/tenant-a":       {body: asDoc("{base}/tenant-a")},
		})
		_, err := f.discover("/mcp", &Challenge{})
		if !errors.Is(err, ErrIssuerMismatch) {
			t.Errorf("issuer %q: %v, want ErrIssuerMismatch", issuer, err)
			continue
		}
		if reqs := f.requests(); slices.Contains(reqs, "GET /.well-known/openid-configuration/tenant-a") {
			t.Errorf("issuer %q: discovery tried the next candidate after a mismatch: %q", issuer, reqs)
		}
	}
	// Case and trailing-slash variants of the issuer in authorization_servers.
	for _, tc := range []struct{ listed, doc string }{
		{"{base}/tenant-a/", "{base}/tenant-a"},
		{"{base}/Tenant-a", "{base}/tenant-a"},
	} {
		f := newFakeServer(t, map[string]reply{
			"/.well-known/oauth-protected-resource/mcp":         {body: prm("{base}/mcp", tc.listed)},
			"/.well-known/oauth-authorization-server/tenant-a/": {body: asDoc(tc.doc)},
			"/.well-known/oauth-authorization-server/Tenant-a":  {body: asDoc(tc.doc)},
		})
		if _, err := f.discover("/mcp", &Challenge{}); !errors.Is(err, ErrIssuerMismatch) {
			t.Errorf("listed %q, document %q: %v, want ErrIssuerMismatch", tc.listed, tc.doc, err)
		}
	}
}

func TestServerMetadataValidation(t *testing.T) {
	const issuer = "https://as.example/tenant-a"
	loop := egress.Policy{AllowLoopbackHTTP: true}
	doc := func(extra string) string {
		return strings.ReplaceAll(asDocWith(issuer, extra), "{base}", "https://as.example")
	}
	s256 := `"code_challenge_methods_supported":["S256"]`
	for _, tc := range []struct {
		name     string
		data     string
		policy   egress.Policy
		wantErr  string
		sentinel error
	}{
		{name: "good", data: doc(s256)},
		{name: "plain and S256", data: doc(`"code_challenge_methods_supported":["plain","S256"]`)},
		{name: "PKCE absent", data: doc(""), wantErr: "code_challenge_methods_supported is absent", sentinel: ErrNoPKCE},
		{name: "PKCE empty", data: doc(`"code_challenge_methods_supported":[]`), sentinel: ErrNoPKCE},
		{name: "PKCE plain only", data: doc(`"code_challenge_methods_supported":["plain"]`), wantErr: `["plain"]`, sentinel: ErrNoPKCE},
		{name: "PKCE lower-case s256", data: doc(`"code_challenge_methods_supported":["s256"]`), sentinel: ErrNoPKCE},
		{name: "PKCE not a list", data: doc(`"code_challenge_methods_supported":"S256"`), wantErr: "invalid JSON"},
		{name: "javascript authorize", data: doc(s256 + `,"authorization_endpoint":"javascript:alert(document.domain)"`), wantErr: `authorization_endpoint: url not allowed: scheme "javascript"`},
		{name: "data authorize", data: doc(s256 + `,"authorization_endpoint":"data:text/html;base64,PHNjcmlwdD4="`), wantErr: `authorization_endpoint: url not allowed: scheme "data"`},
		{name: "vbscript authorize", data: doc(s256 + `,"authorization_endpoint":"vbscript:msgbox"`), wantErr: `authorization_endpoint: url not allowed`},
		{name: "file token", data: doc(s256 + `,"token_endpoint":"file:///etc/passwd"`), wantErr: `token_endpoint: url not allowed: scheme "file"`},
		{name: "ftp registration", data: doc(s256 + `,"registration_endpoint":"ftp://as.example/register"`), wantErr: `registration_endpoint: url not allowed: scheme "ftp"`},
		{name: "http revocation", data: doc(s256 + `,"revocation_endpoint":"http://as.example/revoke"`), wantErr: `revocation_endpoint: url not allowed: http`},
		{name: "http revocation, loopback mode", data: doc(s256 + `,"revocation_endpoint":"http://as.example/revoke"`), policy: loop, wantErr: `revocation_endpoint: url not allowed: http`},
		{name: "http loopback, loopback mode", data: doc(s256 + `,"token_endpoint":"http://127.0.0.1:9/token"`), policy: loop},
		{name: "http loopback", data: doc(s256 + `,"token_endpoint":"http://127.0.0.1:9/token"`), wantErr: "token_endpoint: url not allowed"},
		{name: "metadata token endpoint", data: doc(s256 + `,"token_endpoint":"https://169.254.169.254/latest/meta-data/"`), wantErr: "token_endpoint: blocked address 169.254.169.254", sentinel: egress.ErrBlocked},
		{name: "caddy admin", data: doc(s256 + `,"token_endpoint":"http://localhost:2019/load"`), wantErr: "token_endpoint: url not allowed"},
		{name: "crlf authorize", data: doc(s256 + `,"authorization_endpoint":"https://as.example/a\r\nX: y"`), wantErr: "authorization_endpoint: url not allowed: character"},
		{name: "no authorize", data: `{"issuer":"` + issuer + `","token_endpoint":"https://as.example/t",` + s256 + `}`, wantErr: "authorization_endpoint is missing"},
		{name: "no token", data: `{"issuer":"` + issuer + `","authorization_endpoint":"https://as.example/a",` + s256 + `}`, wantErr: "token_endpoint is missing"},
		{name: "issuer mismatch first", data: strings.Replace(doc(""), issuer, issuer+"/", 1), sentinel: ErrIssuerMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md, err := parseServerMetadata([]byte(tc.data), issuer, tc.policy)
			if tc.wantErr == "" && tc.sentinel == nil {
				if err != nil || md.Issuer != issuer {
					t.Fatalf("parseServerMetadata: %+v, %v", md, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseServerMetadata accepted %s", tc.data)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseServerMetadata: %v, want %q", err, tc.wantErr)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("parseServerMetadata: %v, want %v", err, tc.sentinel)
			}
		})
	}
}

// TestBlockedDiscoveryTargets checks that URLs learned from the resource
// that point inside are refused, and no connection is made to them.
func TestBlockedDiscoveryTargets(t *testing.T) {
	inner := egresstest.NewListener(t)
	lookup := func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		switch host {
		case "meta.test":
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		case "inner.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	for _, tc := range []struct {
		name   string
		routes map[string]reply
	}{
		{"challenge to metadata service", map[string]reply{
			"/mcp": unauthorized(`Bearer resource_metadata="https://169.254.169.254/latest/meta-data/"`),
		}},
		{"challenge to private address", map[string]reply{
			"/mcp": unauthorized(`Bearer resource_metadata="https://10.0.0.1/prm"`),
		}},
		{"challenge to a name for a private address", map[string]reply{
			"/mcp": unauthorized(`Bearer resource_metadata="https://meta.test/prm"`),
		}},
		{"challenge to a loopback service", map[string]reply{
			"/mcp": unauthorized(`Bearer resource_metadata="https://127.0.0.1:` + inner.Port() + `/prm"`),
		}},
		{"challenge to a name for a loopback service", map[string]reply{
			"/mcp": unauthorized(`Bearer resource_metadata="https://inner.test:` + inner.Port() + `/prm"`),
		}},
		{"authorization server on a private address", map[string]reply{
			"/mcp": unauthorized(""),
			"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "https://[::ffff:169.254.169.254]")},
		}},
		{"authorization server on a name for loopback", map[string]reply{
			"/mcp": unauthorized(""),
			"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "https://inner.test:"+inner.Port())},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t, tc.routes)
			// The connector's own host is trusted, as the admin configured
			// it; loopback is not otherwise allowed.
			pol := egress.Policy{Trusted: []string{f.srv.Listener.Addr().String()}, LookupNetIP: lookup, Timeout: 2 * time.Second}
			_, err := Discover(context.Background(), egress.Client(pol), f.srv.URL+"/mcp", Options{Policy: pol})
			if !errors.Is(err, egress.ErrBlocked) || !strings.Contains(err.Error(), "blocked address") {
				t.Fatalf("Discover: %v, want blocked address\nrequests %q", err, f.requests())
			}
			t.Log(err)
			if n := inner.Accepted(); n != 0 {
				t.Fatalf("the inner listener accepted %d connections", n)
			}
		})
	}
}

func TestDiscoverResourceChecked(t *testing.T) {
	for _, resource := range []string{"javascript:alert(1)", "http://10.0.0.5/mcp", "https://10.0.0.5/mcp", "https://host/mcp#x"} {
		if _, err := Discover(context.Background(), nil, resource, Options{}); err == nil || !strings.HasPrefix(err.Error(), "resource: ") {
			t.Errorf("Discover(%q): %v, want a resource error", resource, err)
		}
	}
}

// TestConfiguredIssuer checks that a resource without metadata is served
// by the issuer an admin configured, and only then.
func TestConfiguredIssuer(t *testing.T) {
	f := newFakeServer(t, map[string]reply{
		"/mcp": unauthorized(`Bearer realm="x"`),
		"/.well-known/oauth-authorization-server/realms/x": {body: asDoc("{base}/realms/x")},
	})
	discover := func(issuer string) (*Result, error) {
		pol := f.policy()
		return Discover(context.Background(), egress.Client(pol), f.srv.URL+"/mcp", Options{Policy: pol, Issuer: issuer})
	}
	res, err := discover(f.srv.URL + "/realms/x")
	if err != nil || res.Server.AuthorizationEndpoint != f.srv.URL+"/authorize" || res.Resource.Resource != "" || res.FoundBy != FoundByIssuer {
		t.Fatalf("Discover with a configured issuer: %+v, %v", res, err)
	}
	if _, err := discover(f.srv.URL + "/realms/y"); !errors.Is(err, ErrNoAuthorizationServer) || !strings.Contains(err.Error(), "/realms/y/.well-known/openid-configuration") {
		t.Fatalf("Discover with a configured issuer that has no metadata: %v", err)
	}
	if _, err := discover(f.srv.URL + "/realms/x?q=1"); err == nil || !strings.Contains(err.Error(), "query") {
		t.Fatalf("Discover with a configured issuer that has a query: %v", err)
	}
	// Without one, the 2025-03-26 fallback serves (TestLegacyServer).
	if res, err := discover(""); err != nil || res.FoundBy != FoundByDefaults {
		t.Fatalf("Discover without an issuer: %+v, %v", res, err)
	}
}

func TestNoResourceMetadata(t *testing.T) {
	// A failing origin metadata document ends the 2025-03-26 fallback,
	// with an error that still says no resource metadata was found.
	f := newFakeServer(t, map[string]reply{
		"/mcp": unauthorized(`Bearer realm="x"`),
		"/.well-known/oauth-authorization-server": {status: http.StatusInternalServerError},
	})
	_, err := f.discover("/mcp?key=s3cr3t", nil)
	if !errors.Is(err, ErrNoResourceMetadata) {
		t.Fatalf("Discover: %v, want ErrNoResourceMetadata", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %q leaks the connector URL's query", err)
	}
	// A resource_metadata URL from the challenge is not followed by the
	// well-known URIs when it has nothing.
	f = newFakeServer(t, map[string]reply{
		"/mcp": unauthorized(`Bearer resource_metadata="{base}/gone"`),
		"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "{base}")},
	})
	if _, err := f.discover("/mcp", nil); !errors.Is(err, ErrNoResourceMetadata) {
		t.Fatalf("Discover: %v, want ErrNoResourceMetadata", err)
	}
	if reqs := f.requests(); len(reqs) != 2 {
		t.Fatalf("requests %q", reqs)
	}
}

func TestProbeFailure(t *testing.T) {
	f := newFakeServer(t, map[string]reply{
		"/mcp": {status: 307, header: map[string]string{"Location": "https://elsewhere.example/mcp?token=x"}},
	})
	_, err := f.discover("/mcp", nil)
	if !errors.Is(err, egress.ErrRedirect) || strings.Contains(err.Error(), "token=x") {
		t.Fatalf("Discover: %v", err)
	}
	_, err = Discover(context.Background(), nil, "http://127.0.0.1:1/mcp", Options{Policy: egress.Policy{AllowLoopbackHTTP: true}})
	if err == nil || !strings.HasPrefix(err.Error(), "probing http://127.0.0.1:1/mcp: ") {
		t.Fatalf("Discover with nothing listening: %v", err)
	}
}

// TestShortenBound: a shortened message, its mark included, stays within
// the bound.
func TestShortenBound(t *testing.T) {
	if got := shorten(strings.Repeat("é", 200)); len(got) > 120 || !strings.HasSuffix(got, "…") {
		t.Fatalf("shorten gave %d bytes: %q", len(got), got)
	}
}

// TestLegacyServer checks the 2025-03-26 back-compat of a resource that
// publishes no protected-resource metadata: the authorization-server
// metadata at its origin (its path discarded), else the default
// endpoints there.
func TestLegacyServer(t *testing.T) {
	f := newFakeServer(t, map[string]reply{
		"/tenant/mcp": unauthorized(`Bearer realm="x"`),
		"/.well-known/oauth-authorization-server": {body: asDocWith("{base}",
			`"authorization_endpoint":"{base}/oauth/authorize","code_challenge_methods_supported":["S256"],"scopes_supported":["a","b"]`)},
	})
	res, err := f.discover("/tenant/mcp", nil)
	if err != nil || res.FoundBy != FoundByOrigin || res.Server.Issuer != f.srv.URL ||
		res.Server.AuthorizationEndpoint != f.srv.URL+"/oauth/authorize" || res.Resource.Resource != "" ||
		!slices.Equal(res.Scopes, []string{"a", "b"}) {
		t.Fatalf("Discover with metadata at the origin: %+v, %v", res, err)
	}
	want := []string{"POST /tenant/mcp", "GET /.well-known/oauth-protected-resource/tenant/mcp",
		"GET /.well-known/oauth-protected-resource", "GET /.well-known/oauth-authorization-server"}
	if got := f.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}

	f = newFakeServer(t, map[string]reply{"/tenant/mcp": unauthorized(`Bearer realm="x", scope="files"`)})
	res, err = f.discover("/tenant/mcp", nil)
	if err != nil {
		t.Fatalf("Discover with no metadata at all: %v", err)
	}
	wantServer := ServerMetadata{Issuer: f.srv.URL, AuthorizationEndpoint: f.srv.URL + "/authorize",
		TokenEndpoint: f.srv.URL + "/token", RegistrationEndpoint: f.srv.URL + "/register",
		CodeChallengeMethodsSupported: []string{"S256"}}
	if res.FoundBy != FoundByDefaults || !reflect.DeepEqual(res.Server, wantServer) ||
		res.Resource.Resource != "" || !slices.Equal(res.Scopes, []string{"files"}) {
		t.Fatalf("Discover with no metadata at all: %+v", res)
	}

	// The origin's metadata is checked like any other: its issuer must be
	// the origin, exactly.
	f = newFakeServer(t, map[string]reply{
		"/mcp": unauthorized(`Bearer realm="x"`),
		"/.well-known/oauth-authorization-server": {body: asDoc("{base}/")},
	})
	if _, err := f.discover("/mcp", nil); !errors.Is(err, ErrIssuerMismatch) || !errors.Is(err, ErrNoResourceMetadata) {
		t.Fatalf("Discover with a mismatched issuer at the origin: %v", err)
	}
}
