package oauthflow

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// realHarness is a Manager whose connector "notion" is the MCP server at
// connectorURL, found by real discovery and connected through a real
// authorization server, asking for scopes (nil: what discovery found).
func realHarness(t *testing.T, connectorURL string, scopes []string) *harness {
	t.Helper()
	return newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0] = realConfig(t, connectorURL, scopes)
	})
}

// realConfig is the per-user connector "notion" for the MCP server at
// connectorURL, found by real discovery, asking for scopes (nil: what
// discovery found).
func realConfig(t *testing.T, connectorURL string, scopes []string) Config {
	pol := egress.Policy{AllowLoopbackHTTP: true, Timeout: 10 * time.Second}
	hc := egress.Client(pol)
	t.Cleanup(hc.CloseIdleConnections)
	return Config{Connector: "notion", OAuthConfig: connectors.OAuthConfig{Resource: connectorURL, Consent: PerUser, Scopes: scopes, InsecureLoopback: true}, HTTP: hc,
		Discover: func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
			return discovery.Discover(ctx, hc, resource, discovery.Options{Challenge: ch, Policy: pol})
		}}
}

// connectReal runs alice's consent at the real authorization server and
// returns her access token.
func connectReal(t *testing.T, h *harness) string {
	t.Helper()
	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cb, err := url.Parse(testas.Authorize(t, authURL, "alice", publicURL+CallbackPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Callback(context.Background(), cb.Query(), "alice"); err != nil {
		t.Fatalf("Callback: %v", err)
	}
	return accessToken(t, h)
}

// accessToken returns alice's access token, refreshing it if it expired.
func accessToken(t *testing.T, h *harness) string {
	t.Helper()
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return strings.TrimPrefix(tok.Header, "Bearer ")
}

// checkAudience checks that the server issued token for audience and that
// the MCP server at mcpURL takes it.
func checkAudience(t *testing.T, as *testas.AS, mcpURL, token, audience string) {
	t.Helper()
	active, aud, err := as.Active(context.Background(), token)
	if err != nil || !active || aud != audience {
		t.Fatalf("the access token: active %v, audience %q, %v; want audience %q", active, aud, err, audience)
	}
	req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		t.Fatalf("the upstream refused the access token: %s", resp.Header.Get("WWW-Authenticate"))
	}
}

// refreshAccess lets alice's token expire and returns the new one.
func refreshAccess(t *testing.T, h *harness, old string) string {
	t.Helper()
	h.expire()
	refreshed := accessToken(t, h)
	if refreshed == old {
		t.Fatal("the expired token was not refreshed")
	}
	return refreshed
}

// TestRealResourceFromMetadata: an MCP server at http://host:port/mcp
// whose protected-resource metadata names the resource http://host:port
// is connected with that resource (RFC 9728, RFC 8707), which the real
// authorization server accepts alone, on the authorization request, the
// code exchange and the refresh.
func TestRealResourceFromMetadata(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	origin := strings.TrimSuffix(up.URL, "/mcp")
	if origin == up.URL {
		t.Fatalf("the upstream's URL %s has no path", up.URL)
	}
	as := testas.Start(t, testas.Options{Resource: origin})
	up.SetGuard(as.Protect)
	h := realHarness(t, up.URL, nil)

	first := connectReal(t, h)
	checkAudience(t, as, up.URL, first, origin)
	checkAudience(t, as, up.URL, refreshAccess(t, h, first), origin)
	st, err := as.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TokenRequests["refresh_token"] != 1 || len(st.TokenErrors) != 0 {
		t.Fatalf("the server's token requests: %+v", st)
	}
}

// legacyOrigin is one origin that serves, as an MCP server of the
// 2025-03-26 era does, both the MCP endpoint /mcp, protected with no
// protected-resource metadata, and its authorization server, a real one
// behind a proxy. It records the paths asked for.
type legacyOrigin struct {
	t        *testing.T
	URL      string // the origin; the MCP endpoint is URL+"/mcp"
	as       *testas.AS
	toAS     *httputil.ReverseProxy
	toMCP    *httputil.ReverseProxy
	rename   map[string]string // a path here → the path at the authorization server
	metadata bool              // serve the authorization server's metadata

	mu   sync.Mutex
	hits []string
}

// startLegacyOrigin starts the MCP upstream, the authorization server and
// the origin in front of them. With metadata, the origin serves the
// server's metadata at the root well-known URIs; without, it serves none,
// and the default endpoints /authorize, /token and /register instead.
func startLegacyOrigin(t *testing.T, metadata bool) *legacyOrigin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &legacyOrigin{t: t, URL: "http://" + ln.Addr().String(), metadata: metadata}
	o.as = testas.Start(t, testas.Options{Resource: o.URL + "/mcp", Issuer: o.URL})
	if !metadata {
		// oidc-provider's own routes for the default endpoints.
		o.rename = map[string]string{"/authorize": "/auth", "/register": "/reg", "/token": "/token"}
	}
	up := testupstream.StartT(t, testupstream.Options{Name: "legacy"})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	o.toAS = proxyTo(t, o.as.URL, tr)
	o.toMCP = proxyTo(t, up.URL, tr)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return o
}

func proxyTo(t *testing.T, target string, tr http.RoundTripper) *httputil.ReverseProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p.Transport = tr
	return p
}

func (o *legacyOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.hits = append(o.hits, r.URL.Path)
	o.mu.Unlock()
	switch path := r.URL.Path; {
	case path == "/mcp":
		o.guard(w, r)
	case strings.HasPrefix(path, "/.well-known/oauth-authorization-server") || strings.HasPrefix(path, "/.well-known/openid-configuration"):
		if !o.metadata {
			http.NotFound(w, r)
			return
		}
		o.toAS.ServeHTTP(w, r)
	case strings.HasPrefix(path, "/.well-known/"):
		http.NotFound(w, r)
	case o.rename != nil && o.rename[path] != "":
		r.URL.Path = o.rename[path]
		o.toAS.ServeHTTP(w, r)
	default:
		o.toAS.ServeHTTP(w, r)
	}
}

// guard lets through a request whose bearer token the authorization
// server issued for the MCP endpoint, and challenges any other with a
// 2025-03-26 challenge: no resource_metadata.
func (o *legacyOrigin) guard(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok {
		active, aud, err := o.as.Active(r.Context(), token)
		if err == nil && active && aud == o.URL+"/mcp" {
			o.toMCP.ServeHTTP(w, r)
			return
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="mcp"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// paths returns the paths the origin was asked for.
func (o *legacyOrigin) paths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.hits)
}

// TestRealLegacyServer: an MCP server of the 2025-03-26 era, which
// publishes no protected-resource metadata, is connected through the
// authorization server at its origin: the one its RFC 8414 metadata
// there describes, or with none, the one at the default endpoints
// /authorize, /token and /register. The resource is the connector URL.
func TestRealLegacyServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metadata bool
		paths    []string // asked for at the origin
	}{
		{"metadata at the origin", true, []string{"/.well-known/oauth-authorization-server", "/auth", "/reg", "/token"}},
		{"default endpoints", false, []string{"/.well-known/oauth-authorization-server", "/authorize", "/register", "/token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := startLegacyOrigin(t, tc.metadata)
			mcpURL := o.URL + "/mcp"
			// Nothing advertises scopes without metadata: the admin
			// names them.
			var scopes []string
			if !tc.metadata {
				scopes = []string{"mcp"}
			}
			h := realHarness(t, mcpURL, scopes)
			first := connectReal(t, h)
			checkAudience(t, o.as, mcpURL, first, mcpURL)
			checkAudience(t, o.as, mcpURL, refreshAccess(t, h, first), mcpURL)
			hits := o.paths()
			for _, p := range tc.paths {
				if !slices.Contains(hits, p) {
					t.Errorf("the origin was not asked for %s: %q", p, hits)
				}
			}
		})
	}
}
