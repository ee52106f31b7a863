package discovery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// reply is what the fake server answers on one path. Bodies and headers
// may use {base}, replaced with the server's URL.
type reply struct {
	status int
	ctype  string // default application/json
	body   string
	header map[string]string
	delay  time.Duration
}

// fakeServer is one loopback server playing the MCP server, its
// protected-resource metadata and its authorization server; it records
// every request it sees.
type fakeServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]reply
	hits   []string
	probes []*http.Request
	bodies []string
}

func newFakeServer(t *testing.T, routes map[string]reply) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, routes: routes}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.hits = append(f.hits, r.Method+" "+r.URL.RequestURI())
	if r.Method == http.MethodPost {
		f.probes = append(f.probes, r.Clone(context.Background()))
		f.bodies = append(f.bodies, string(body))
	}
	rep, ok := f.routes[r.URL.Path]
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rep.delay > 0 {
		select {
		case <-time.After(rep.delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.header {
		w.Header().Set(k, f.expand(v))
	}
	if rep.ctype == "" {
		rep.ctype = "application/json"
	}
	w.Header().Set("Content-Type", rep.ctype)
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, f.expand(rep.body))
}

// expand replaces {base} with the server's URL.
func (f *fakeServer) expand(s string) string {
	return strings.ReplaceAll(s, "{base}", f.srv.URL)
}

// requests returns the requests seen so far, as "METHOD request-uri".
func (f *fakeServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hits...)
}

// policy is the egress policy of the tests: loopback allowed.
func (f *fakeServer) policy() egress.Policy {
	return egress.Policy{AllowLoopbackHTTP: true, Timeout: 2 * time.Second}
}

// discover runs Discover for the resource at path with the test policy.
func (f *fakeServer) discover(path string, ch *Challenge) (*Result, error) {
	pol := f.policy()
	return Discover(context.Background(), egress.Client(pol), f.srv.URL+path, Options{Challenge: ch, Policy: pol})
}

// prm returns a protected-resource metadata document.
func prm(resource string, servers ...string) string {
	return fmt.Sprintf(`{"resource":%q,"authorization_servers":[%s],"scopes_supported":["mcp:read","mcp:write"]}`,
		resource, quoteList(servers))
}

// asDoc returns an authorization server metadata document with S256.
func asDoc(issuer string) string {
	return asDocWith(issuer, `"code_challenge_methods_supported":["S256"]`)
}

// asDocWith returns an authorization server metadata document with the
// given extra members, which may override the endpoints.
func asDocWith(issuer, extra string) string {
	members := map[string]string{
		"authorization_endpoint": `"{base}/authorize"`,
		"token_endpoint":         `"{base}/token"`,
		"registration_endpoint":  `"{base}/register"`,
		"revocation_endpoint":    `"{base}/revoke"`,
	}
	for name := range members {
		if strings.Contains(extra, `"`+name+`"`) {
			delete(members, name)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"issuer":%q`, issuer)
	for _, name := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"} {
		if v, ok := members[name]; ok {
			fmt.Fprintf(&b, `,%q:%s`, name, v)
		}
	}
	if extra != "" {
		b.WriteString("," + extra)
	}
	b.WriteString("}")
	return b.String()
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ",")
}

// unauthorized is the probe's answer from a protected MCP server.
func unauthorized(challenge string) reply {
	r := reply{status: http.StatusUnauthorized, body: `{"error":"unauthorized"}`}
	if challenge != "" {
		r.header = map[string]string{"WWW-Authenticate": challenge}
	}
	return r
}

// parseResourceMetadata decodes and validates a protected-resource
// metadata document for resource.
func parseResourceMetadata(data []byte, resource *url.URL) (*ResourceMetadata, error) {
	var doc ResourceMetadata
	if err := decodeStrict(data, &doc); err != nil {
		return nil, err
	}
	if err := validateResourceMetadata(&doc, resource); err != nil {
		return nil, err
	}
	return &doc, nil
}

// parseServerMetadata decodes and validates an authorization server
// metadata document fetched for issuer.
func parseServerMetadata(data []byte, issuer string, pol egress.Policy) (*ServerMetadata, error) {
	var doc ServerMetadata
	if err := decodeStrict(data, &doc); err != nil {
		return nil, err
	}
	if err := validateServerMetadata(&doc, issuer, pol); err != nil {
		return nil, err
	}
	return &doc, nil
}
