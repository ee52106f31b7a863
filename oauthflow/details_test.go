package oauthflow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// details returns the details of connector for user, failing the test on
// an error, and checks that their JSON holds no canary: no client secret,
// token or code.
func (h *harness) details(connector, user string) Details {
	h.t.Helper()
	d, err := h.m.Details(context.Background(), connector, user)
	if err != nil {
		h.t.Fatalf("Details(%s, %q): %v", connector, user, err)
	}
	b, _ := json.Marshal(d)
	assertNoCanary(h.t, "the details", string(b))
	return d
}

// TestDetailsOfAConnection: before a consent, the details say that the
// server is not discovered yet and name no client, and ask the server
// nothing; after it, the discovered endpoints, what the grant recorded,
// the registered client (its secret only as stored), the scopes, the
// times and the state; a refresh moves updated, not created.
func TestDetailsOfAConnection(t *testing.T) {
	h := newHarness(t, nil)
	d := h.details("notion", "alice")
	if d.Server.Source != SourceNotDiscovered || d.Server.Issuer != "" || d.Client.Kind != "" || d.Recorded != nil ||
		d.Connection.State != connectors.StateNone || d.RedirectURI != publicURL+CallbackPath || d.Client.Registration != RegistrationAuto {
		t.Fatalf("details before consent: %+v", d)
	}
	if n := h.as.discovers.Load() + h.as.tokenCalls.Load(); n != 0 {
		t.Fatalf("showing details asked the authorization server %d times", n)
	}

	h.connect(h.as, "notion", "alice")
	connected := h.clock.Now()
	d = h.details("notion", "alice")
	meta := h.as.meta
	want := Endpoints{Issuer: meta.Issuer, AuthorizationEndpoint: meta.AuthorizationEndpoint, TokenEndpoint: meta.TokenEndpoint,
		RegistrationEndpoint: meta.RegistrationEndpoint, RevocationEndpoint: meta.RevocationEndpoint}
	if d.Server.Endpoints != want || d.Server.Source != SourceDiscovered || d.Server.DiscoveredAt.IsZero() {
		t.Errorf("server = %+v, want %+v discovered", d.Server, want)
	}
	if d.Recorded == nil || d.Recorded.Issuer != meta.Issuer || d.Recorded.TokenEndpoint != meta.TokenEndpoint ||
		d.Recorded.RevocationEndpoint != meta.RevocationEndpoint || d.Recorded.Resource != "https://mcp.notion.test/mcp" {
		t.Errorf("recorded = %+v", d.Recorded)
	}
	if d.Client.Kind != RegistrationDCR || d.Client.ID == "" || !d.Client.SecretStored {
		t.Errorf("client = %+v, want the registered client with its secret stored", d.Client)
	}
	if !slices.Equal(d.Scopes, []string{"read"}) || !slices.Equal(d.RequestedScopes, []string{"read"}) ||
		d.Connection.State != connectors.StateActive || !d.RefreshToken ||
		!d.Created.Equal(connected) || !d.Updated.Equal(connected) || !d.Expires.Equal(connected.Add(time.Hour)) {
		t.Errorf("connection details = %+v", d)
	}

	h.expire()
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	if d = h.details("notion", "alice"); !d.Created.Equal(connected) || !d.Updated.Equal(h.clock.Now()) {
		t.Errorf("after a refresh: created %v, updated %v; want %v and %v", d.Created, d.Updated, connected, h.clock.Now())
	}
	// A consent again keeps the first consent's time.
	h.connect(h.as, "notion", "alice")
	if d = h.details("notion", "alice"); !d.Created.Equal(connected) {
		t.Errorf("a second consent moved created to %v", d.Created)
	}
}

// TestDetailsWhose: a per-user connector without a user has details
// without a connection; an unknown user has the zero connection; an
// unknown connector is an error.
func TestDetailsWhose(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	if d := h.details("notion", ""); d.Connection.State != connectors.StateNone || d.Recorded != nil || d.Server.Issuer == "" {
		t.Errorf("no user: %+v", d)
	}
	if d := h.details("notion", "nobody"); d.Connection.State != connectors.StateNone || d.Recorded != nil || d.Account != nil {
		t.Errorf("an unknown user: %+v", d)
	}
	if _, err := h.m.Details(context.Background(), "nope", ""); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("an unknown connector: %v", err)
	}
}

// TestDetailsOfAStaticClient: configured endpoints are shown as
// configured, and a static client's secret only as stored.
func TestDetailsOfAStaticClient(t *testing.T) {
	var secret string
	h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
		secret = h.as.canary("SECRET")
		h.as.clients["static-client"] = secret
		cfg := h.as.config("notion")
		cfg.Discover, cfg.Consent = nil, Shared
		cfg.ClientID, cfg.ClientSecret = "static-client", secret
		cfg.Issuer, cfg.AuthorizationEndpoint, cfg.TokenEndpoint = h.as.Issuer, h.as.Issuer+"/authorize", h.as.Issuer+"/token"
		(*cfgs)[0] = cfg
	})
	d := h.details("notion", "")
	if d.Server.Source != SourceConfigured || d.Server.TokenEndpoint != h.as.Issuer+"/token" || d.Server.RevocationEndpoint != "" {
		t.Errorf("server = %+v", d.Server)
	}
	if d.Client != (ClientDetails{Registration: RegistrationAuto, Kind: RegistrationStatic, ID: "static-client", SecretStored: true,
		AuthMethod: AuthMethodBasic}) {
		t.Errorf("client = %+v", d.Client)
	}
	h.connect(h.as, "notion", "")
	if d = h.details("notion", "someone"); d.Connection.State != connectors.StateActive || d.Client.ID != "static-client" {
		t.Errorf("shared connection, whoever asks: %+v", d)
	}
}

// idToken is an unsigned ID token with claims: signatures are not
// checked (OpenID Connect Core §3.1.3.7, TLS to the token endpoint).
func idToken(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

// TestAccountOfAConnection: the account is read from an ID token made
// for mcpgate's client by the issuer, else from the token response's own
// members (a number is taken as text), and a refresh that names it anew
// updates it. An ID token for another client is not believed.
func TestAccountOfAConnection(t *testing.T) {
	h := newHarness(t, nil)
	claims := func(aud string, name string) map[string]any {
		return map[string]any{"iss": h.as.Issuer, "aud": aud, "sub": "u-123", "email": "alice@example.com", "name": name}
	}
	h.as.set(func(a *fakeAS) {
		a.extra = func(c codeFor) map[string]any {
			return map[string]any{"id_token": idToken(claims(c.clientID, "Alice")), "user_id": 42}
		}
	})
	h.connect(h.as, "notion", "alice")
	want := Account{Subject: "u-123", Email: "alice@example.com", Name: "Alice", Source: AccountFromIDToken}
	if a := h.details("notion", "alice").Account; a == nil || *a != want {
		t.Fatalf("account = %+v, want %+v", a, want)
	}
	if g := h.m.Granted(context.Background(), "notion", "alice"); g.Account == nil || *g.Account != want || !slices.Equal(g.Scopes, []string{"read"}) {
		t.Errorf("Granted = %+v", g)
	}

	// A refresh whose ID token is another client's: the response's own
	// members stand.
	h.as.set(func(a *fakeAS) {
		a.extra = func(codeFor) map[string]any {
			return map[string]any{"id_token": idToken(claims("someone-else", "Mallory")), "user_id": 42, "email": []string{"x"}}
		}
	})
	h.expire()
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	want = Account{Subject: "42", Source: AccountFromTokenResponse}
	if a := h.details("notion", "alice").Account; a == nil || *a != want {
		t.Errorf("account after the refresh = %+v, want %+v", a, want)
	}
	// One without either keeps what was known.
	h.as.set(func(a *fakeAS) { a.extra = nil })
	h.expire()
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	if a := h.details("notion", "alice").Account; a == nil || *a != want {
		t.Errorf("account after a refresh that names no one = %+v, want %+v", a, want)
	}
	if _, err := h.m.Disconnect(context.Background(), "notion", "alice", "test"); err != nil {
		t.Fatal(err)
	}
	if g := h.m.Granted(context.Background(), "notion", "alice"); g.Account != nil || g.Scopes != nil {
		t.Errorf("Granted after a disconnect = %+v", g)
	}
}

// TestParseIDToken: what is not a JWS compact token, or not JSON, gives
// no claims; an audience may be a list.
func TestParseIDToken(t *testing.T) {
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c"} {
		if c := parseIDToken(bad); c != nil {
			t.Errorf("parseIDToken(%q) = %+v", bad, c)
		}
	}
	c := parseIDToken(idToken(map[string]any{"iss": "https://as", "aud": []string{"x", "me"}, "sub": "s\x00ub"}))
	if a := c.account("https://as", "me"); a == nil || a.Subject != "sub" {
		t.Errorf("a listed audience: %+v", a)
	}
	if a := c.account("https://other", "me"); a != nil {
		t.Errorf("another issuer's claims were believed: %+v", a)
	}
}
