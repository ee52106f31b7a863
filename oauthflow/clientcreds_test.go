package oauthflow

import (
	"cmp"
	"context"
	"crypto/elliptic"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// serviceSecret is the client secret of the real server's service client.
const serviceSecret = "svc-secret-canary-7f3a"

// serviceServer starts an MCP upstream guarded by a real authorization
// server that has a service client "svc", allowed the client credentials
// grant only.
func serviceServer(t *testing.T) (*testas.AS, string) {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{Name: "svc"})
	as := testas.Start(t, testas.Options{Resource: up.URL, ServiceClients: map[string]string{"svc": serviceSecret}})
	up.SetGuard(as.Protect)
	return as, up.URL
}

// serviceConfig is connector "notion" at connectorURL under the client
// credentials grant, as client "svc" with secret, authenticating with
// method.
func serviceConfig(t *testing.T, connectorURL, secret, method string) Config {
	cfg := realConfig(t, connectorURL, nil)
	cfg.Consent, cfg.Grant = Shared, GrantClientCredentials
	cfg.ClientID, cfg.ClientSecret, cfg.TokenAuthMethod = "svc", secret, method
	return cfg
}

// serviceInstance is a Manager on st and clock whose connector "notion"
// is cfg.
func serviceInstance(t *testing.T, st store.Store, clock *fakeClock, cfg Config) *Manager {
	t.Helper()
	m, err := New(Options{Store: st, PublicURL: publicURL, StateKey: []byte("0123456789abcdef0123456789abcdef"), Now: clock.Now}, []Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestClientCredentialsServesUsers: a client credentials connector is
// ready before anyone connects it, and serves alice and bob one token
// that the real server issued to the client without any authorization
// request, which the upstream takes; no refresh token is kept, a consent
// is refused, the details show the grant and Diagnose gets a token.
func TestClientCredentialsServesUsers(t *testing.T) {
	as, upURL := serviceServer(t)
	for _, method := range []string{AuthMethodBasic, AuthMethodPost} {
		t.Run(method, func(t *testing.T) {
			before := serverStats(t, as).TokenRequests[GrantClientCredentials]
			m := serviceInstance(t, store.NewMemory(), &fakeClock{t: time.Now()}, serviceConfig(t, upURL, serviceSecret, method))
			ctx := context.Background()
			if conn := m.Connection(ctx, "notion", "alice"); conn.Status() != connectors.StatusReady {
				t.Fatalf("before any call: %+v, want ready", conn)
			}
			alice, err := tokenOf(m, "alice")
			if err != nil {
				t.Fatalf("alice: %v", err)
			}
			bob, err := tokenOf(m, "bob")
			if err != nil || bob != alice {
				t.Fatalf("bob: %v %v, want alice's token", bob, err)
			}
			checkAudience(t, as, upURL, strings.TrimPrefix(alice.Header, "Bearer "), upURL)
			st := serverStats(t, as)
			if st.Authorizations != 0 || st.TokenRequests[GrantClientCredentials]-before != 1 || len(st.TokenErrors) != 0 {
				t.Fatalf("the server's counters: %+v", st)
			}
			g := storedGrant(t, m.store, "")
			if g.RefreshToken != "" || g.ClientID != "svc" || g.Connection.State != connectors.StateActive {
				t.Fatalf("the stored grant: %+v", g)
			}
			if _, err := m.Start(ctx, "notion", "alice", ""); !errors.Is(err, ErrNoConsent) {
				t.Fatalf("Start: %v, want ErrNoConsent", err)
			}
			if d, err := m.Details(ctx, "notion", ""); err != nil || d.Grant != GrantClientCredentials || d.Connection.State != connectors.StateActive {
				t.Fatalf("Details: %+v %v", d, err)
			}
			steps, err := m.Diagnose(ctx, "notion")
			if last := steps[len(steps)-1]; err != nil || last.Name != StepClientCredentials || !last.OK {
				t.Fatalf("Diagnose: %+v %v", steps, err)
			}
		})
	}
}

// TestClientCredentialsRefetch: a token about to expire is fetched again
// from the real server, and so is one the upstream refused; a disconnect
// revokes the token in hand and the next call fetches another.
func TestClientCredentialsRefetch(t *testing.T) {
	as, upURL := serviceServer(t)
	clock := &fakeClock{t: time.Now()}
	m := serviceInstance(t, store.NewMemory(), clock, serviceConfig(t, upURL, serviceSecret, ""))
	first, err := tokenOf(m, "alice")
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	second, err := tokenOf(m, "alice")
	if err != nil || second == first {
		t.Fatalf("after expiry: %v %v, want a new token", second, err)
	}
	third, err := m.Token(context.Background(), TokenRequest{Connector: "notion", User: "bob", Refused: second.Header})
	if err != nil || third == second {
		t.Fatalf("after a refusal: %v %v, want a new token", third, err)
	}
	if _, err := m.Disconnect(context.Background(), "notion", "", "rotating"); err != nil {
		t.Fatal(err)
	}
	if active, _, _ := as.Active(context.Background(), strings.TrimPrefix(third.Header, "Bearer ")); active {
		t.Fatal("the disconnected token is still active")
	}
	fourth, err := tokenOf(m, "alice")
	if err != nil || fourth == third {
		t.Fatalf("after a disconnect: %v %v, want a new token", fourth, err)
	}
	checkAudience(t, as, upURL, strings.TrimPrefix(fourth.Header, "Bearer "), upURL)
	if n := serverStats(t, as).TokenRequests[GrantClientCredentials]; n != 4 {
		t.Fatalf("%d client credentials requests, want 4", n)
	}
}

// TestClientCredentialsSingleFlight: many calls at once, on two
// instances sharing one store, for an expired token cost the real server
// one request.
func TestClientCredentialsSingleFlight(t *testing.T) {
	as, upURL := serviceServer(t)
	st := store.NewMemory()
	now := time.Now()
	clocks := []*fakeClock{{t: now}, {t: now}}
	ms := []*Manager{
		serviceInstance(t, st, clocks[0], serviceConfig(t, upURL, serviceSecret, "")),
		serviceInstance(t, st, clocks[1], serviceConfig(t, upURL, serviceSecret, "")),
	}
	tokens := make([]Token, 40)
	errs := make([]error, len(tokens))
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() { tokens[i], errs[i] = tokenOf(ms[i%2], []string{"alice", "bob"}[i%2]) })
	}
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil || tokens[i].Header != tokens[0].Header {
			t.Fatalf("call %d: %v %v", i, tokens[i], errs[i])
		}
	}
	if n := serverStats(t, as).TokenRequests[GrantClientCredentials]; n != 1 {
		t.Fatalf("%d client credentials requests for %d concurrent calls, want 1", n, len(tokens))
	}
}

// TestClientCredentialsBadSecret: a secret the real server refuses makes
// the connector misconfigured, in mcpgate's words, which name neither the
// secret nor the server's description; calls right after it ask the
// server nothing. Diagnose names the refusal; no log line or event
// names the secret.
func TestClientCredentialsBadSecret(t *testing.T) {
	as, upURL := serviceServer(t)
	const wrong = "wrong-secret-canary-91b2"
	core, logs := newObserved()
	var events []Event
	m, err := New(Options{Store: store.NewMemory(), PublicURL: publicURL, StateKey: make([]byte, 32), Logger: zap.New(core),
		OnEvent: func(e Event) { events = append(events, e) }}, []Config{serviceConfig(t, upURL, wrong, "")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	_, err = tokenOf(m, "alice")
	ce, ok := errors.AsType[*ConsentError](err)
	if !ok || ce.Status != connectors.StatusMisconfigured || !strings.Contains(ce.Reason, "refused mcpgate's client credentials (invalid_client)") {
		t.Fatalf("Token: %v, want misconfigured for invalid_client", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), serviceSecret) {
		t.Fatalf("the error names a secret: %v", err)
	}
	if conn := m.Connection(context.Background(), "notion", "bob"); conn.Status() != connectors.StatusMisconfigured || conn.Reason != ce.Reason {
		t.Fatalf("the connection: %+v", conn)
	}
	if _, err := tokenOf(m, "bob"); !errors.Is(err, ErrConsentRequired) {
		t.Fatalf("a second call: %v", err)
	}
	if st := serverStats(t, as); st.TokenRequests[GrantClientCredentials] != 1 || st.TokenErrors[GrantClientCredentials] != 1 {
		t.Fatalf("the server's counters: %+v", st)
	}
	steps, err := m.Diagnose(context.Background(), "notion")
	last := steps[len(steps)-1]
	if err != nil || last.Name != StepClientCredentials || last.OK || !strings.Contains(last.Detail, "invalid_client") || strings.Contains(last.Detail, wrong) {
		t.Fatalf("Diagnose: %+v %v", steps, err)
	}
	var seen strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintln(&seen, e.Message, e.ContextMap())
	}
	fmt.Fprintln(&seen, events)
	if strings.Contains(seen.String(), wrong) || len(events) == 0 {
		t.Fatalf("the logs and events name the secret, or there are no events:\n%s", seen.String())
	}
}

// TestClientCredentialsConfig: the grant's needs are checked, in errors
// that name what is missing; a client key alone authenticates the
// client.
func TestClientCredentialsConfig(t *testing.T) {
	ok := Config{Connector: "svc", OAuthConfig: connectors.OAuthConfig{Grant: GrantClientCredentials, Consent: Shared,
		ClientID: "svc", ClientSecret: "s", Resource: "https://mcp.example.test/mcp",
		Issuer: "https://as.example.test", TokenEndpoint: "https://as.example.test/token"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	keyed := ok
	keyed.ClientSecret, keyed.ClientKey = "", testKeyPEM(t, newECKey(t, elliptic.P256()), false)
	if err := keyed.Validate(); err != nil {
		t.Fatalf("a client with a key alone (private_key_jwt implied): %v", err)
	}
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"unknown grant", func(c *Config) { c.Grant, c.AuthorizationEndpoint = "password", "https://as.example.test/auth" }, `grant "password" must be authorization_code or client_credentials`},
		{"no client", func(c *Config) { c.ClientID, c.ClientSecret = "", "" }, "needs a static client"},
		{"dcr", func(c *Config) { c.ClientID, c.ClientSecret, c.Registration = "", "", RegistrationDCR }, "needs a static client"},
		{"public client", func(c *Config) { c.ClientSecret, c.TokenAuthMethod = "", AuthMethodNone }, "needs the client to authenticate"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "needs the client to authenticate"},
		{"per user", func(c *Config) { c.Consent = PerUser }, "needs consent shared"},
		{"consent unset", func(c *Config) { c.Consent = "" }, "needs consent shared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.tweak(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s\"") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

// TestClientCredentialsDPoP: with dpop on, each client credentials
// request carries a proof (RFC 9449), the token is presented as DPoP, and
// the token fetched again after expiry is bound to the same key.
func TestClientCredentialsDPoP(t *testing.T) {
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		cfg := &(*cfgs)[0]
		cfg.Consent, cfg.Grant, cfg.DPoP = Shared, GrantClientCredentials, DPoPOn
		cfg.ClientID, cfg.ClientSecret = "svc", "svc-secret"
	})
	var mu sync.Mutex
	var thumbs []string
	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, r request) bool {
			if r.form.Get("grant_type") != GrantClientCredentials || r.user != "svc" {
				t.Errorf("a token request of grant %q by %q", r.form.Get("grant_type"), r.user)
			}
			p := verifyProof(t, r.header.Get("DPoP"))
			mu.Lock()
			thumbs = append(thumbs, thumbprintOf(p.header.JWK))
			n := len(thumbs)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"cc-token-%d","token_type":"DPoP","expires_in":3600}`, n)
			return true
		}
	})
	first, err := h.token("notion", "alice")
	if err != nil || !first.Bound() || first.Header != "DPoP cc-token-1" {
		t.Fatalf("the first token: %v %v, want a bound DPoP token", first, err)
	}
	g := h.grant("notion", "")
	key, err := parseDPoPKey(g.DPoPKey)
	if err != nil || g.TokenType != TokenTypeDPoP {
		t.Fatalf("the grant's token type %q, key %v", g.TokenType, err)
	}
	h.expire()
	second, err := h.token("notion", "bob")
	if err != nil || second.Header != "DPoP cc-token-2" {
		t.Fatalf("after expiry: %v %v", second, err)
	}
	if len(thumbs) != 2 || thumbs[0] != key.thumbprint || thumbs[1] != key.thumbprint {
		t.Fatalf("the proofs' keys %v, want the grant's %s twice", thumbs, key.thumbprint)
	}
}

// TestClientCredentialsPrivateKeyJWT: a client credentials connector
// whose client has a key and no secret proves itself with an assertion
// (RFC 7523) signed by that key, for the token endpoint, and sends no
// secret.
func TestClientCredentialsPrivateKeyJWT(t *testing.T) {
	key := newECKey(t, elliptic.P256())
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		cfg := &(*cfgs)[0]
		cfg.Consent, cfg.Grant = Shared, GrantClientCredentials
		cfg.ClientID, cfg.ClientKey = "svc", testKeyPEM(t, key, false)
	})
	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, r request) bool {
			assertion := r.form.Get("client_assertion")
			if r.form.Get("grant_type") != GrantClientCredentials || r.hasBasic || r.form.Has("client_secret") || assertion == "" {
				t.Errorf("a token request of grant %q, basic %v, form %v", r.form.Get("grant_type"), r.hasBasic, r.form)
				oauthError(w, http.StatusUnauthorized, "invalid_client")
				return true
			}
			_, claims, input, sig := decodeJWT(t, assertion)
			if claims["iss"] != "svc" || claims["sub"] != "svc" || claims["aud"] != a.Issuer+"/token" {
				t.Errorf("the assertion's claims %v", claims)
			}
			if err := verifyJWS(key.Public(), "ES256", input, sig); err != nil {
				t.Error(err)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"cc-key-token","token_type":"Bearer","expires_in":3600}`)
			return true
		}
	})
	tok, err := h.token("notion", "alice")
	if err != nil || tok.Header != "Bearer cc-key-token" {
		t.Fatalf("Token: %v %v", tok, err)
	}
}

// TestRealClientCredentialsDPoP: against oidc-provider with DPoP nonces
// required, a client credentials connector with dpop on, or without a
// word of dpop since the server advertises it, gets a token bound to its
// key (answering the nonce challenge) that the resource server takes
// with a proof and refuses as a bearer token; the token fetched again
// after the upstream refused one is bound to the same key.
func TestRealClientCredentialsDPoP(t *testing.T) {
	for _, dpop := range []string{DPoPOn, ""} {
		t.Run("dpop "+cmp.Or(dpop, "unset"), func(t *testing.T) { realClientCredentialsDPoP(t, dpop) })
	}
}

func realClientCredentialsDPoP(t *testing.T, dpop string) {
	up := testupstream.StartT(t, testupstream.Options{Name: "svc"})
	as := testas.Start(t, testas.Options{Resource: up.URL, DPoPNonce: true, ServiceClients: map[string]string{"svc": serviceSecret}})
	up.SetGuard(as.Protect)
	cfg := serviceConfig(t, up.URL, serviceSecret, "")
	cfg.DPoP = dpop
	// Proofs carry the Manager's clock as iat, which servers check.
	st := store.NewMemory()
	m := serviceInstance(t, st, &fakeClock{t: time.Now()}, cfg)
	tok, err := tokenOf(m, "alice")
	if err != nil || !tok.Bound() || !strings.HasPrefix(tok.Header, "DPoP ") {
		t.Fatalf("Token: %v %v, want a bound DPoP token", tok, err)
	}
	if s := serverStats(t, as); s.TokenRequests[GrantClientCredentials] != 2 || s.TokenErrors[GrantClientCredentials] != 1 {
		t.Fatalf("the server's counters: %+v, want one nonce challenge, then the token", s)
	}
	if got := realCall(t, up.URL, tok); got == http.StatusUnauthorized {
		t.Fatalf("a DPoP call: %d, refusals %v", got, as.DPoPRefusals())
	}
	bearer := Token{Header: "Bearer " + strings.TrimPrefix(tok.Header, "DPoP ")}
	if got := realCall(t, up.URL, bearer); got != http.StatusUnauthorized {
		t.Fatalf("a bearer use of the DPoP token: %d", got)
	}
	key := storedGrant(t, st, "").DPoPKey
	again, err := m.Token(context.Background(), TokenRequest{Connector: "notion", User: "bob", Refused: tok.Header})
	if err != nil || again.Header == tok.Header || !again.Bound() {
		t.Fatalf("after a refusal: %v %v, want a new bound token", again, err)
	}
	if storedGrant(t, st, "").DPoPKey != key {
		t.Fatal("the token fetched again is bound to another key")
	}
	if got := realCall(t, up.URL, again); got == http.StatusUnauthorized {
		t.Fatalf("a DPoP call with the new token: %d, refusals %v", got, as.DPoPRefusals())
	}
}
