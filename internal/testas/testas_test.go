package testas_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// resourceMetadata is the part of RFC 9728 metadata the client reads.
type resourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

// serverMetadata is the part of RFC 8414 metadata the client reads.
type serverMetadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	RegistrationEndpoint  string   `json:"registration_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	IssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// fixture is an OAuth-protected upstream and a client registered with its
// authorization server, found the way an MCP client finds them.
type fixture struct {
	up      *testupstream.Server
	as      *testas.AS
	meta    serverMetadata
	client  *oauth2.Config
	browser *http.Client // follows redirects and keeps the AS's cookies
}

// newFixture starts an upstream guarded by an authorization server whose
// access tokens live for ttl, and registers a client.
func newFixture(t *testing.T, ttl time.Duration) *fixture {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: ttl, Accounts: []string{"alice", "bob"}})
	up.SetGuard(as.Protect)

	f := &fixture{up: up, as: as}
	prm := discoverResource(t, up.URL)
	if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != as.Issuer {
		t.Fatalf("authorization_servers = %q, want [%q]", prm.AuthorizationServers, as.Issuer)
	}
	f.meta = discoverServer(t, as.Issuer)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(callback.Close)
	f.client = register(t, f.meta, callback.URL+"/callback", prm.ScopesSupported)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.browser = &http.Client{Jar: jar, Timeout: agenttest.Timeout}
	t.Cleanup(f.browser.CloseIdleConnections)
	return f
}

// discoverResource follows the 401 challenge to the protected resource
// metadata (RFC 9728 section 5).
func discoverResource(t *testing.T, mcpURL string) resourceMetadata {
	t.Helper()
	status, challenge := mcpStatus(t, mcpURL, "")
	m := regexp.MustCompile(`^Bearer resource_metadata="([^"]+)"$`).FindStringSubmatch(challenge)
	if status != http.StatusUnauthorized || m == nil {
		t.Fatalf("without a token: %d %q, want 401 with resource_metadata alone", status, challenge)
	}
	if want := strings.Replace(mcpURL, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1); m[1] != want {
		t.Errorf("resource_metadata = %q, want %q", m[1], want)
	}
	var prm resourceMetadata
	getJSON(t, m[1], &prm)
	if prm.Resource != mcpURL {
		t.Errorf("resource = %q, want %q", prm.Resource, mcpURL)
	}
	return prm
}

// discoverServer fetches the authorization server's metadata from both
// well-known URLs, which oidc-provider serves with the same content.
func discoverServer(t *testing.T, issuer string) serverMetadata {
	t.Helper()
	var meta serverMetadata
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		meta = serverMetadata{}
		getJSON(t, issuer+wk, &meta)
		if meta.Issuer != issuer {
			t.Errorf("%s: issuer = %q, want %q", wk, meta.Issuer, issuer)
		}
	}
	if !meta.IssParameterSupported || strings.Join(meta.CodeChallengeMethods, " ") != "S256" {
		t.Errorf("metadata = %+v, want iss parameter and S256 only", meta)
	}
	return meta
}

// register registers a confidential web client (RFC 7591) with an http
// loopback redirect URI, as the gateway does.
func register(t *testing.T, meta serverMetadata, redirectURI string, scopes []string) *oauth2.Config {
	t.Helper()
	req, _ := json.Marshal(map[string]any{
		"redirect_uris":              []string{redirectURI},
		"application_type":           "web",
		"token_endpoint_auth_method": "client_secret_basic",
		"client_name":                "testas",
	})
	resp, err := http.Post(meta.RegistrationEndpoint, "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reg); err != nil || resp.StatusCode != http.StatusCreated || reg.ClientSecret == "" {
		t.Fatalf("registration: %s, %+v, %v", resp.Status, reg, err)
	}
	return &oauth2.Config{
		ClientID:     reg.ClientID,
		ClientSecret: reg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   meta.AuthorizationEndpoint,
			TokenURL:  meta.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: redirectURI,
		Scopes:      scopes,
	}
}

// authorize sends the browser through an authorization request with PKCE
// and returns the callback's query and the code verifier. Extra parameters
// override the usual ones; an empty value removes one.
func (f *fixture) authorize(t *testing.T, extra map[string]string) (url.Values, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(f.client.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("resource", f.up.URL)))
	q := u.Query()
	for k, v := range extra {
		q.Set(k, v)
		if v == "" {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	resp, err := f.browser.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	landed := resp.Request.URL
	if !strings.HasPrefix(landed.String(), f.client.RedirectURL+"?") {
		t.Fatalf("the browser ended at %s (%s), not at the redirect URI:\n%s", landed, resp.Status, page)
	}
	got := landed.Query()
	if got.Get("state") != "st4te" || got.Get("iss") != f.as.Issuer {
		t.Errorf("callback state=%q iss=%q, want st4te and %q", got.Get("state"), got.Get("iss"), f.as.Issuer)
	}
	return got, verifier
}

// login authorizes account and exchanges the code, with the resource, for
// tokens.
func (f *fixture) login(t *testing.T, account string) *oauth2.Token {
	t.Helper()
	got, verifier := f.authorize(t, map[string]string{"login_hint": account})
	if got.Get("code") == "" {
		t.Fatalf("callback without code: %v", got)
	}
	tok, err := f.client.Exchange(t.Context(), got.Get("code"), oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("resource", f.up.URL))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with the authorization code")
	}
	return tok
}

// tokenResponse is an RFC 6749 section 5.1 response, or section 5.2 error.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// refresh makes a refresh request with the resource (RFC 8707 section 2.2),
// which x/oauth2's TokenSource cannot send.
func (f *fixture) refresh(t *testing.T, refreshToken string) tokenResponse {
	t.Helper()
	var tr tokenResponse
	f.post(t, f.meta.TokenEndpoint, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"resource":      {f.up.URL},
	}, &tr)
	return tr
}

// post sends a form as the client, with client_secret_basic, and decodes
// a JSON answer into v if v is not nil.
func (f *fixture) post(t *testing.T, endpoint string, form url.Values, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(f.client.ClientID), url.QueryEscape(f.client.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %s: %v", endpoint, resp.Status, err)
		}
	}
}

// active introspects token.
func (f *fixture) active(t *testing.T, token string) (bool, string) {
	t.Helper()
	ok, aud, err := f.as.Active(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	return ok, aud
}

// mcpStatus posts initialize to the MCP endpoint and returns the status and
// the WWW-Authenticate challenge.
func mcpStatus(t *testing.T, mcpURL, token string) (int, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"testas","version":"1"}}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, mcpURL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// getJSON fetches a JSON document into v.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", u, resp.Status, err)
	}
}

// TestGrantLifecycle walks one grant through its whole life as an MCP
// client sees it: discovery, registration, authorization, use, expiry,
// rotation and revocation.
func TestGrantLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3*time.Second)
	tok := f.login(t, "bob")

	c := agenttest.Dial(t, f.up.URL, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	if len(agenttest.ToolNames(t, c)) == 0 {
		t.Error("tools/list through the guard is empty")
	}
	for _, sub := range f.as.Seen() {
		if sub != "bob" {
			t.Errorf("the upstream saw %q, want only bob: %q", sub, f.as.Seen())
		}
	}
	if ok, aud := f.active(t, tok.AccessToken); !ok || aud != f.up.URL {
		t.Errorf("access token active=%v aud=%q, want true and %q", ok, aud, f.up.URL)
	}

	waitExpired(t, f.up.URL, tok.AccessToken)

	next := f.refresh(t, tok.RefreshToken)
	if next.AccessToken == "" || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh = %+v, want new access and refresh tokens", next)
	}
	if ok, _ := f.active(t, tok.RefreshToken); ok {
		t.Error("the rotated-out refresh token is still active")
	}
	if status, _ := mcpStatus(t, f.up.URL, next.AccessToken); status != http.StatusOK {
		t.Errorf("with the refreshed access token: %d, want 200", status)
	}

	f.post(t, f.meta.RevocationEndpoint, url.Values{"token": {next.RefreshToken}, "token_type_hint": {"refresh_token"}}, nil)
	// oidc-provider revokes the whole grant with its refresh token.
	for name, token := range map[string]string{"refresh": next.RefreshToken, "access": next.AccessToken} {
		if ok, _ := f.active(t, token); ok {
			t.Errorf("the %s token is active after revocation", name)
		}
	}
	checkStats(t, f.as, testas.Stats{
		TokenRequests:  map[string]int{"authorization_code": 1, "refresh_token": 1},
		Authorizations: 1,
		Registrations:  1,
		Revocations:    1,
	})
}

// waitExpired waits until the upstream refuses token as invalid.
func waitExpired(t *testing.T, mcpURL, token string) {
	t.Helper()
	deadline := time.Now().Add(agenttest.Timeout)
	for {
		status, challenge := mcpStatus(t, mcpURL, token)
		if status == http.StatusUnauthorized && strings.Contains(challenge, `error="invalid_token"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access token still gets %d after %v", status, agenttest.Timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkStats compares the counters that the tests control.
func checkStats(t *testing.T, as *testas.AS, want testas.Stats) {
	t.Helper()
	got, err := as.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.Authorizations != want.Authorizations || got.Registrations != want.Registrations || got.Revocations != want.Revocations ||
		!maps.Equal(got.TokenRequests, want.TokenRequests) || !maps.Equal(got.TokenErrors, want.TokenErrors) {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

// TestRefreshReuse shows what a client that replays a rotated-out refresh
// token gets from oidc-provider: invalid_grant, and the whole grant
// revoked, so the newer refresh token dies too.
func TestRefreshReuse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	tok := f.login(t, "alice")
	next := f.refresh(t, tok.RefreshToken)
	if again := f.refresh(t, tok.RefreshToken); again.Error != "invalid_grant" {
		t.Errorf("replayed refresh = %+v, want invalid_grant", again)
	}
	if ok, _ := f.active(t, next.RefreshToken); ok {
		t.Error("the newer refresh token survived the replay")
	}
	checkStats(t, f.as, testas.Stats{
		TokenRequests:  map[string]int{"authorization_code": 1, "refresh_token": 2},
		TokenErrors:    map[string]int{"refresh_token": 1},
		Authorizations: 1,
		Registrations:  1,
	})
}

// TestAuthorization checks the interaction and the authorization
// endpoint's refusals, with one browser for every case.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	tests := []struct {
		name      string
		extra     map[string]string
		wantError string
	}{
		{"bob", map[string]string{"login_hint": "bob"}, ""},
		// The session is bob's, but the hint asks for alice: server.mjs's
		// extra login check makes her log in.
		{"alice after bob", map[string]string{"login_hint": "alice"}, ""},
		{"unknown account", map[string]string{"login_hint": "mallory"}, "access_denied"},
		{"other resource", map[string]string{"resource": "http://127.0.0.1:1/other"}, "invalid_target"},
		{"no PKCE", map[string]string{"code_challenge": "", "code_challenge_method": ""}, "invalid_request"},
		{"plain PKCE", map[string]string{"code_challenge_method": "plain"}, "invalid_request"},
	}
	for _, tt := range tests {
		got, _ := f.authorize(t, tt.extra)
		if got.Get("error") != tt.wantError || (tt.wantError == "") == (got.Get("code") == "") {
			t.Errorf("%s: callback %v, want error %q", tt.name, got, tt.wantError)
		}
	}
	refresh := map[string]string{}
	for _, account := range []string{"alice", "bob"} {
		tok := f.login(t, account)
		if status, _ := mcpStatus(t, f.up.URL, tok.AccessToken); status != http.StatusOK {
			t.Errorf("%s: %d, want 200", account, status)
		}
		refresh[account] = tok.RefreshToken
	}
	if seen := strings.Join(f.as.Seen(), " "); seen != "alice bob" {
		t.Errorf("seen = %q, want alice then bob", seen)
	}
	// Bob's login ended alice's browser session; her grant outlives it.
	if next := f.refresh(t, refresh["alice"]); next.AccessToken == "" {
		t.Errorf("refreshing alice's grant after bob's login: %+v", next)
	}
}
