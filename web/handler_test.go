package web_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// site is a web.Handler served on loopback, with the caller taken from
// the X-Test-User header (in production, the host's authentication sets
// it), a real Mux over a real upstream, and a real OAuth manager.
type site struct {
	h   *web.Handler
	srv *httptest.Server
	URL string
}

// The connectors of the site: plain needs no consent, notion is OAuth
// with per-user consent, shared OAuth with shared consent, and hidden is
// granted to no one but the admin.
var siteRules = []grants.Rule{
	{Sources: []string{"user:alice"}, Connectors: []string{"plain", "notion", "shared"}},
	{Sources: []string{"user:root"}, Role: grants.RoleAdmin, Connectors: []string{"*"}},
}

// tag is the site's connect-link tag: any function of the user will do
// for the handler, which only compares.
func tag(user string) string { return "tag-of-" + user }

// startSite starts a site; withOAuth false gives one where no connector
// uses OAuth.
func startSite(t *testing.T, withOAuth bool) *site {
	t.Helper()
	return startSiteAt(t, withOAuth, "http://127.0.0.1:9/as")
}

// startSiteAt starts a site whose OAuth connectors' authorization server
// is at as, and whose connectors named in disabled an admin disabled.
func startSiteAt(t *testing.T, withOAuth bool, as string, disabled ...string) *site {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{})
	upURL, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(id string, auth connectors.AuthType) *connectors.Connector {
		return &connectors.Connector{ID: id, URL: upURL, Auth: connectors.Auth{Type: auth}, Timeout: 2 * time.Second,
			Disabled: slices.Contains(disabled, id)}
	}
	conns := []*connectors.Connector{conn("plain", connectors.AuthNone), conn("hidden", connectors.AuthNone),
		conn("notion", connectors.AuthOAuth), conn("shared", connectors.AuthOAuth)}
	policy, err := grants.New(siteRules)
	if err != nil {
		t.Fatal(err)
	}
	mux, err := mcpmux.New(mcpmux.Options{Connectors: conns, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			r = r.WithContext(web.WithCaller(r.Context(), grants.Caller{ID: u}))
		}
		s.h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		s.srv.Close()
		_ = mux.Close()
	})
	s.URL = s.srv.URL
	o := web.Options{Mux: mux, Policy: policy, PublicURL: s.URL + "/", ConnectTag: tag,
		Presets: []map[string]string{{"id": "github", "source": "builtin"}}}
	if withOAuth {
		o.Manager = newManager(t, s.URL, up.URL, as, disabled...)
		o.OAuth = func(id string) (*oauthflow.Manager, oauthflow.Consent, bool) {
			consent, ok := o.Manager.Consent(id)
			return o.Manager, consent, ok
		}
	}
	s.h = web.New(o)
	return s
}

// newManager is an OAuth manager for notion and shared, with a static
// client of the authorization server at as, whose endpoints are
// configured, so that starting a consent needs no discovery. The root's
// integration tests run whole flows through a real one.
func newManager(t *testing.T, publicURL, resource, as string, disabled ...string) *oauthflow.Manager {
	t.Helper()
	cfg := func(id string, consent oauthflow.Consent) oauthflow.Config {
		var c oauthflow.Config
		c.Connector, c.Resource, c.Registration, c.Consent, c.ClientID = id, resource, oauthflow.RegistrationStatic, consent, "web-test"
		c.Issuer, c.AuthorizationEndpoint, c.TokenEndpoint, c.InsecureLoopback = as, as+"/authorize", as+"/token", true
		c.Disabled = slices.Contains(disabled, id) // as the gateway builds it from the connector
		return c
	}
	m, err := oauthflow.New(oauthflow.Options{Store: store.NewMemory(), PublicURL: publicURL, StateKey: make([]byte, 32)},
		[]oauthflow.Config{cfg("notion", oauthflow.PerUser), cfg("shared", oauthflow.Shared)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// do sends a request as user ("" for none) with headers, and returns the
// response with its body read.
func (s *site) do(t *testing.T, method, path, user string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// errorOf returns the "error" member of a JSON body, or fails.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	var out struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Error == nil {
		t.Fatalf("body is not a JSON error: %v: %q", err, body)
	}
	return *out.Error
}

const unauthenticated = "authentication is missing: the gateway could not tell who is calling"

// TestRoutes is the routing table: each path and method, with and
// without a caller, gets today's status, Allow header and message; no
// path is ever redirected (ServeMux would redirect an unclean one).
func TestRoutes(t *testing.T) {
	s := startSite(t, true)
	tests := []struct {
		method, path, user string
		status             int
		allow, msg         string
	}{
		{"GET", "/connectors", "alice", 200, "", ""},
		{"HEAD", "/connectors", "alice", 200, "", ""},
		{"POST", "/connectors", "alice", 405, "GET, HEAD", "GET /connectors lists your connectors"},
		{"GET", "/connectors/presets", "alice", 200, "", ""},
		{"HEAD", "/connectors/presets", "alice", 200, "", ""},
		{"DELETE", "/connectors/presets", "alice", 405, "GET, HEAD", "GET /connectors/presets lists the presets"},
		{"GET", "/connectors/notion/connect", "alice", 405, "POST", "use POST"},
		{"PUT", "/connectors/notion/disconnect", "alice", 405, "POST", "use POST"},
		{"GET", "/connect/callback", "alice", 400, "", ""},
		{"HEAD", "/connect/callback", "alice", 405, "GET", ""},
		{"POST", "/connect/callback", "alice", 405, "GET", "the OAuth callback takes GET"},
		{"GET", "/connect/client-metadata.json", "", 200, "", ""},
		{"HEAD", "/connect/client-metadata.json", "", 200, "", ""},
		{"POST", "/connect/client-metadata.json", "", 405, "GET, HEAD", "GET the client metadata document"},
		{"GET", "/connectors/nosuch/mcp", "alice", 404, "", ""},
		{"POST", "/connectors/hidden/connect", "alice", 404, "", mcpmux.NoSuchConnector},
		{"POST", "/connectors/nosuch/disconnect", "alice", 404, "", mcpmux.NoSuchConnector},
		// Paths that name nothing: 404, caller or not.
		{"GET", "/connectors/", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain/", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain/mcp/", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain/tools", "", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/presets/", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain/api/x", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors//mcp", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain%2Fx/mcp", "", 404, "", mcpmux.NoSuchConnector},
		{"POST", "/connectors/a%2F..%2Fplain/connect", "", 404, "", mcpmux.NoSuchConnector},
		{"POST", "/connectors/./connect", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/connectors/plain/../../mcp", "alice", 404, "", mcpmux.NoSuchConnector},
		{"GET", "/elsewhere", "alice", 404, "", mcpmux.NoSuchConnector},
		// Every endpoint but the client metadata needs a caller, asked
		// for before the method.
		{"GET", "/mcp", "", 401, "", unauthenticated},
		{"POST", "/connectors/plain/mcp", "", 401, "", unauthenticated},
		{"GET", "/connectors", "", 401, "", unauthenticated},
		{"POST", "/connectors", "", 401, "", unauthenticated},
		{"GET", "/connectors/presets", "", 401, "", unauthenticated},
		{"POST", "/connectors/notion/connect", "", 401, "", unauthenticated},
		{"GET", "/connectors/notion/connect", "", 401, "", unauthenticated},
		{"POST", "/connectors/notion/disconnect", "", 401, "", unauthenticated},
		{"GET", "/connect/callback", "", 401, "", unauthenticated},
		{"HEAD", "/connect/callback", "", 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.user, func(t *testing.T) {
			resp, body := s.do(t, tt.method, tt.path, tt.user, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if tt.msg != "" {
				if got := errorOf(t, body); got != tt.msg {
					t.Errorf("error %q, want %q", got, tt.msg)
				}
			}
		})
	}
}

// TestMCPEndpoints: /mcp serves every granted connector, prefixed, and
// /connectors/{id}/mcp one of them, unprefixed, to a real agent.
func TestMCPEndpoints(t *testing.T) {
	s := startSite(t, false)
	header := map[string]string{"X-Test-User": "alice"}
	all := agenttest.ToolNames(t, agenttest.Dial(t, s.URL+"/mcp", header))
	one := agenttest.ToolNames(t, agenttest.Dial(t, s.URL+"/connectors/plain/mcp", header))
	if !slices.Contains(one, "echo") || slices.Contains(one, "plain_echo") {
		t.Errorf("/connectors/plain/mcp tools: %v", one)
	}
	if !slices.Contains(all, "plain_echo") || slices.ContainsFunc(all, func(n string) bool { return strings.HasPrefix(n, "hidden_") }) {
		t.Errorf("/mcp tools: %v", all)
	}
}

// TestConnectorsJSONOrHTML: GET /connectors is JSON unless Accept prefers
// text/html over JSON; both are not to be cached, and the page may not be
// framed nor run anything.
func TestConnectorsJSONOrHTML(t *testing.T) {
	s := startSite(t, true)
	for _, tt := range []struct {
		accept string
		html   bool
	}{
		{"", false},
		{"application/json", false},
		{"application/json, text/html", false},
		{"text/html", true},
		{"text/html,application/xhtml+xml,application/json;q=0.9", true},
	} {
		t.Run(tt.accept, func(t *testing.T) {
			resp, body := s.do(t, "GET", "/connectors", "alice", nil, "Accept", tt.accept)
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			if !tt.html {
				checkJSONList(t, resp, body)
				return
			}
			h := resp.Header
			if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("X-Frame-Options") != "DENY" ||
				!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("page headers %v", h)
			}
			if !strings.Contains(body, `id="connector-notion"`) || strings.Contains(body, "connector-hidden") {
				t.Errorf("page rows: %s", body)
			}
		})
	}
}

// checkJSONList checks alice's JSON list: her connectors, with their
// OAuth consent and whether she may connect them.
func checkJSONList(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	var out struct {
		Connectors []struct {
			ID         string `json:"id"`
			Consent    string `json:"consent"`
			CanConnect bool   `json:"can_connect"`
		} `json:"connectors"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range out.Connectors {
		got[c.ID] = fmt.Sprintf("%s/%v", c.Consent, c.CanConnect)
	}
	want := map[string]string{"plain": "/false", "notion": "per_user/true", "shared": "shared/false"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("connector %s: consent/can_connect %q, want %q (all: %v)", id, got[id], w, got)
		}
	}
	if _, ok := got["hidden"]; ok {
		t.Errorf("alice sees the hidden connector: %v", got)
	}
}

// TestConnectorsPageBanner: the page says how the last action went.
func TestConnectorsPageBanner(t *testing.T) {
	s := startSite(t, true)
	for query, want := range map[string]string{
		"?connected=notion":                              "Connected notion.",
		"?disconnected=notion":                           "Disconnected notion.",
		"?error=access_denied&error_description=refused": "Connecting failed: refused (access_denied)",
	} {
		resp, body := s.do(t, "GET", "/connectors"+query, "alice", nil, "Accept", "text/html")
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: status %d, page lacks %q", query, resp.StatusCode, want)
		}
	}
}

// TestForeignConnectLink: a connect link opened by a user other than the
// one it was made for is refused with a 403 page that connects nothing;
// opened by its user, it highlights the connector and offers Connect.
func TestForeignConnectLink(t *testing.T) {
	s := startSite(t, true)
	resp, body := s.do(t, "GET", "/connectors?connect=notion&for="+tag("mallory"), "alice", nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This link was made for another user") {
		t.Fatalf("foreign link: status %d: %s", resp.StatusCode, body)
	}
	if strings.Contains(body, `action="/connectors/notion/connect"`) || strings.Contains(body, `class="focus"`) {
		t.Errorf("a foreign link's page offers to connect: %s", body)
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the refusal lacks the page headers: %v", resp.Header)
	}
	resp, body = s.do(t, "GET", "/connectors?connect=notion&for="+tag("alice"), "alice", nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/connectors/notion/connect"`) ||
		!strings.Contains(body, `id="connector-notion" class="focus"`) {
		t.Errorf("own link: status %d: %s", resp.StatusCode, body)
	}
}

// TestConnect: a connect answers the authorization URL as JSON, or sends a
// form's browser to it; a cross-site POST is refused, as are connectors
// the caller may not consent for and bad bodies.
func TestConnect(t *testing.T) {
	s := startSite(t, true)
	ctJSON := "application/json"
	resp, body := s.do(t, "POST", "/connectors/notion/connect", "alice", strings.NewReader(`{"redirect_url": "`+s.URL+`/connectors"}`),
		"Content-Type", ctJSON, "Sec-Fetch-Site", "same-origin")
	var out struct {
		AuthURL string `json:"auth_url"`
	}
	if resp.StatusCode != 200 || jsonInto(body, &out) != nil || !strings.HasPrefix(out.AuthURL, "http://127.0.0.1:9/as/authorize?") {
		t.Fatalf("connect: status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("auth_url may be cached: %v", resp.Header)
	}
	resp, _ = s.do(t, "POST", "/connectors/notion/connect", "alice", strings.NewReader("redirect_url="+url.QueryEscape(s.URL+"/connectors")),
		"Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "http://127.0.0.1:9/as/authorize?") {
		t.Errorf("form connect: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, tt := range []struct {
		name, path, user, body string
		header                 []string
		status                 int
		msg                    string
	}{
		{"cross-site", "/connectors/notion/connect", "alice", "", []string{"Sec-Fetch-Site", "cross-site"}, 403,
			"cross-site request refused: connect and disconnect only from the gateway's own pages"},
		{"foreign origin", "/connectors/notion/disconnect", "alice", "", []string{"Origin", "https://evil.example"}, 403,
			"cross-site request refused: connect and disconnect only from the gateway's own pages"},
		{"no oauth", "/connectors/plain/connect", "alice", "", nil, 400, "connector plain does not use OAuth: there is nothing to connect"},
		{"shared", "/connectors/shared/connect", "alice", "", nil, 403, "connector shared has shared consent: only an admin may connect or disconnect it"},
		{"no access", "/connectors/notion/connect", "bob", "", nil, 404, mcpmux.NoSuchConnector},
		{"bad redirect", "/connectors/notion/connect", "alice", `{"redirect_url": "https://evil.example/"}`, []string{"Content-Type", ctJSON}, 400,
			"redirect_url is not allowed: it must be on the gateway's origin or an allowed_redirects origin"},
		{"bad body", "/connectors/notion/connect", "alice", `{"redirect_url": 1}`, []string{"Content-Type", ctJSON}, 400, ""},
		{"large body", "/connectors/notion/connect", "alice", strings.Repeat(" ", 65<<10), nil, 400, "the request body is too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do(t, "POST", tt.path, tt.user, strings.NewReader(tt.body), tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := errorOf(t, body); tt.msg != "" && got != tt.msg {
				t.Errorf("error %q, want %q", got, tt.msg)
			}
		})
	}
}

// TestSharedConnectByAdmin: an admin may consent for a shared connector.
func TestSharedConnectByAdmin(t *testing.T) {
	s := startSite(t, true)
	resp, body := s.do(t, "POST", "/connectors/shared/connect", "root", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"auth_url"`) {
		t.Errorf("admin connect: status %d: %s", resp.StatusCode, body)
	}
}

// TestDisconnect: JSON gets the connection's state and the revocation; a
// form's browser goes back to the Connectors page, which says so.
func TestDisconnect(t *testing.T) {
	s := startSite(t, true)
	resp, body := s.do(t, "POST", "/connectors/notion/disconnect", "alice", nil)
	var out struct {
		Connector  string          `json:"connector"`
		State      string          `json:"state"`
		Revocation json.RawMessage `json:"revocation"`
	}
	if resp.StatusCode != 200 || jsonInto(body, &out) != nil || out.Connector != "notion" || out.State != "disconnected" ||
		!strings.Contains(string(out.Revocation), `"attempted":`) {
		t.Fatalf("disconnect: status %d: %s", resp.StatusCode, body)
	}
	resp, _ = s.do(t, "POST", "/connectors/notion/disconnect", "alice", strings.NewReader(""),
		"Content-Type", "application/x-www-form-urlencoded")
	if want := s.URL + "/connectors?disconnected=notion"; resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Errorf("form disconnect: status %d, Location %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestCallback: a callback that fails says so on a page, with the OAuth
// error code; with no OAuth connector, the callback is unavailable.
func TestCallback(t *testing.T) {
	s := startSite(t, true)
	resp, body := s.do(t, "GET", "/connect/callback?state=forged&code=x", "alice", nil)
	if resp.StatusCode < 400 || resp.StatusCode >= 500 || !strings.Contains(body, "Connecting failed") ||
		resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("forged callback: status %d: %s", resp.StatusCode, body)
	}
	none := startSite(t, false)
	resp, body = none.do(t, "GET", "/connect/callback", "alice", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "No connector here uses OAuth.") {
		t.Errorf("callback without OAuth: status %d: %s", resp.StatusCode, body)
	}
}

// TestClientMetadata: the client ID metadata document is public and may
// be cached; with no OAuth connector, there is none.
func TestClientMetadata(t *testing.T) {
	s := startSite(t, true)
	resp, body := s.do(t, "GET", "/connect/client-metadata.json", "", nil)
	var doc struct {
		RedirectURIs []string `json:"redirect_uris"`
	}
	if resp.StatusCode != 200 || jsonInto(body, &doc) != nil || !slices.Equal(doc.RedirectURIs, []string{s.URL + "/connect/callback"}) ||
		resp.Header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("client metadata: status %d, %v: %s", resp.StatusCode, resp.Header, body)
	}
	none := startSite(t, false)
	resp, body = none.do(t, "GET", "/connect/client-metadata.json", "", nil)
	if resp.StatusCode != 404 || errorOf(t, body) != mcpmux.NoSuchConnector {
		t.Errorf("client metadata without OAuth: status %d: %s", resp.StatusCode, body)
	}
}

// TestPresets: the catalog the host gave, under "presets".
func TestPresets(t *testing.T) {
	s := startSite(t, false)
	resp, body := s.do(t, "GET", "/connectors/presets", "alice", nil)
	if resp.StatusCode != 200 || body != `{"presets":[{"id":"github","source":"builtin"}]}` {
		t.Errorf("presets: status %d: %s", resp.StatusCode, body)
	}
}

// writeWatcher records whether anything reached the response.
type writeWatcher struct {
	header  http.Header
	written bool
}

func (w *writeWatcher) Header() http.Header       { return w.header }
func (w *writeWatcher) Write([]byte) (int, error) { w.written = true; return 0, nil }
func (w *writeWatcher) WriteHeader(int)           { w.written = true }

// TestServeReturnsFailure: Serve hands a failure back unwritten, headers
// included, for a host to handle; ServeHTTP writes the same failure.
func TestServeReturnsFailure(t *testing.T) {
	s := startSite(t, true)
	for _, tt := range []struct {
		method, path, user string
		status             int
		allow              string
	}{
		{"GET", "/connectors", "", 401, ""},
		{"PUT", "/connectors", "alice", 405, "GET, HEAD"},
		{"GET", "/connectors/plain", "alice", 404, ""},
		{"GET", "/connectors//mcp", "alice", 404, ""},
		{"POST", "/connectors/plain/connect", "alice", 400, ""},
	} {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.user != "" {
			r = r.WithContext(web.WithCaller(r.Context(), grants.Caller{ID: tt.user}))
		}
		w := &writeWatcher{header: http.Header{}}
		err := s.h.Serve(w, r)
		var e *web.Error
		if !errors.As(err, &e) || e.Status != tt.status || e.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: Serve returned %#v, want an *Error %d", tt.method, tt.path, err, tt.status)
			continue
		}
		if w.written || len(w.header) != 0 {
			t.Errorf("%s %s: Serve wrote %v", tt.method, tt.path, w.header)
		}
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, r)
		if rec.Code != tt.status || rec.Header().Get("Allow") != tt.allow || errorOf(t, rec.Body.String()) != e.Message {
			t.Errorf("%s %s: ServeHTTP wrote %d %v %s", tt.method, tt.path, rec.Code, rec.Header(), rec.Body)
		}
	}
	// A success is written, and nothing returned.
	r := httptest.NewRequest("GET", "/connectors", nil)
	rec := httptest.NewRecorder()
	if err := s.h.Serve(rec, r.WithContext(web.WithCaller(r.Context(), grants.Caller{ID: "alice"}))); err != nil || rec.Code != 200 {
		t.Errorf("Serve of a success: %v, status %d", err, rec.Code)
	}
}

// TestWriteError: an *Error, even wrapped, is written with its status,
// headers and fields, which never replace its message; any other error
// is a 500 that never shows its text.
func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	web.WriteError(rec, errors.New("open /var/lib/mcpgate/secret-canary: permission denied"))
	if rec.Code != 500 || rec.Body.String() != `{"error":"internal error"}` || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("plain error: %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	e := &web.Error{Status: 401, Message: "connector x needs consent", Header: http.Header{"Cache-Control": {"no-store"}},
		Fields: map[string]string{"connect_url": "https://gw/connectors?connect=x", "error": "replaced"}}
	web.WriteError(rec, fmt.Errorf("serving: %w", e))
	if rec.Code != 401 || rec.Header().Get("Cache-Control") != "no-store" ||
		rec.Body.String() != `{"connect_url":"https://gw/connectors?connect=x","error":"connector x needs consent"}` {
		t.Errorf("*Error: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	web.WriteError(rec, nil)
	if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Errorf("nil error wrote %q", rec.Body)
	}
}

// TestOwns: the paths a host hands to the Handler.
func TestOwns(t *testing.T) {
	for p, want := range map[string]bool{
		"/mcp": true, "/connectors": true, "/connectors/": true, "/connectors/x/mcp": true, "/connectors/x/api/y": true,
		"/connect/callback": true, "/connect/client-metadata.json": true,
		"/": false, "/mcp/": false, "/connect": false, "/connect/other": false, "/connectorsx": false, "/index.html": false,
	} {
		if got := web.Owns(p); got != want {
			t.Errorf("Owns(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestCallerFrom: an empty id is no caller.
func TestCallerFrom(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if _, ok := web.CallerFrom(r.Context()); ok {
		t.Error("a caller without WithCaller")
	}
	if _, ok := web.CallerFrom(web.WithCaller(r.Context(), grants.Caller{})); ok {
		t.Error("an empty caller is known")
	}
	if c, ok := web.CallerFrom(web.WithCaller(r.Context(), grants.Caller{ID: "alice"})); !ok || c.ID != "alice" {
		t.Errorf("caller %v %v", c, ok)
	}
}

func jsonInto(body string, v any) error { return json.Unmarshal([]byte(body), v) }

// TestServeCopiesOnce checks that a request whose host set its caller is
// served without copying it again: the caller's exchange also holds the
// failure, so Serve needs no context of its own (one copy of an agent's
// request fewer on every call).
func TestServeCopiesOnce(t *testing.T) {
	s := startSite(t, false)
	req := httptest.NewRequest(http.MethodGet, "/connectors/plain/nothing", nil)
	withCaller := req.WithContext(web.WithCaller(req.Context(), grants.Caller{ID: "alice"}))
	serve := func(r *http.Request) func() {
		return func() {
			if err := s.h.Serve(httptest.NewRecorder(), r); err == nil {
				t.Fatal("an unknown path was served")
			}
		}
	}
	bare, carried := testing.AllocsPerRun(100, serve(req)), testing.AllocsPerRun(100, serve(withCaller))
	if carried >= bare {
		t.Errorf("Serve allocates %v times with the caller set, %v without: it copies the request again", carried, bare)
	}
}
