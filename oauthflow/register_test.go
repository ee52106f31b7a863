package oauthflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

func TestDCRRequest(t *testing.T) {
	tests := []struct {
		supported  []string
		wantMethod string
	}{
		{nil, AuthMethodBasic},
		{[]string{"private_key_jwt", "client_secret_post", "none"}, AuthMethodPost},
		{[]string{"none"}, AuthMethodNone},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.supported), func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) { a.meta.TokenEndpointAuthMethodsSupported = tt.supported })
			h.connect(h.as, "notion", "alice")
			h.connect(h.as, "notion", "bob") // reuses the registration
			if len(h.as.registers) != 1 {
				t.Fatalf("%d registrations, want 1", len(h.as.registers))
			}
			body := h.as.registers[0]
			want := map[string]any{"application_type": "web", "client_name": "mcpgate notion", "token_endpoint_auth_method": tt.wantMethod,
				"redirect_uris": []any{publicURL + CallbackPath}, "grant_types": []any{"authorization_code", "refresh_token"},
				"response_types": []any{"code"}}
			for k, v := range want {
				if fmt.Sprint(body[k]) != fmt.Sprint(v) {
					t.Errorf("%s = %v, want %v", k, body[k], v)
				}
			}
			if _, ok := body["resource"]; ok || len(body) != len(want) {
				t.Errorf("registration body = %v", body)
			}
			req := h.as.tokenRequests()[0]
			switch tt.wantMethod {
			case AuthMethodBasic:
				if !req.hasBasic || req.form.Has("client_secret") {
					t.Errorf("basic: %+v", req.form)
				}
			case AuthMethodPost:
				if req.hasBasic || req.form.Get("client_secret") == "" {
					t.Errorf("post: %+v", req.form)
				}
			case AuthMethodNone:
				if req.hasBasic || req.form.Has("client_secret") || req.form.Get("client_id") == "" {
					t.Errorf("none: %+v", req.form)
				}
			}
		})
	}
}

func TestDCRHostileResponses(t *testing.T) {
	// A hostile registration response is refused: nothing is stored, and no
	// secret in it leaks.
	tests := []struct {
		name    string
		status  int
		body    any
		wantErr string
	}{
		{"no client_id", 201, map[string]any{"client_secret": "SECRET-CANARY-1", "token_endpoint_auth_method": "client_secret_basic"}, "client_id"},
		{"other redirect", 201, map[string]any{"client_id": "c", "client_secret": "SECRET-CANARY-1", "redirect_uris": []string{"https://evil.test/cb"}}, "redirect_uris"},
		{"extra redirect", 201, map[string]any{"client_id": "c", "client_secret": "SECRET-CANARY-1", "redirect_uris": []string{publicURL + CallbackPath, "https://evil.test/cb"}}, "redirect_uris"},
		{"unspoken method", 201, map[string]any{"client_id": "c", "token_endpoint_auth_method": "private_key_jwt"}, "private_key_jwt"},
		{"secret method without secret", 201, map[string]any{"client_id": "c", "token_endpoint_auth_method": "client_secret_post"}, "client_secret"},
		{"expired secret", 201, map[string]any{"client_id": "c", "client_secret": "SECRET-CANARY-1", "client_secret_expires_at": 1000}, "expired"},
		{"no code grant", 201, map[string]any{"client_id": "c", "client_secret": "SECRET-CANARY-1", "grant_types": []string{"client_credentials"}}, "authorization_code"},
		{"huge", 201, map[string]any{"client_id": "c", "pad": strings.Repeat("x", 2<<20)}, "larger than"},
		{"not json", 201, "<html>SECRET-CANARY-1</html>", "not JSON"},
		{"duplicate client_id", 201, `{"client_id":"c","client_id":"SECRET-CANARY-1"}`, "duplicate"},
		{"case-variant client_id", 201, `{"client_id":"c","Client_ID":"SECRET-CANARY-1"}`, "duplicate"},
		{"case-variant client_id alone", 201, `{"Client_ID":"SECRET-CANARY-1"}`, "case-variant"},
		{"refused", 400, map[string]any{"error": "invalid_client_metadata", "error_description": "bad\r\nthing"}, "invalid_client_metadata"},
		{"500", 500, "SECRET-CANARY-1 stack trace", "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) {
				a.onRegister = func(w http.ResponseWriter, _ map[string]any) bool {
					w.WriteHeader(tt.status)
					if s, ok := tt.body.(string); ok {
						w.Write([]byte(s))
					} else {
						json.NewEncoder(w).Encode(tt.body)
					}
					return true
				}
			})
			_, err := h.m.Start(context.Background(), "notion", "alice", "")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Start = %v, want an error about %s", err, tt.wantErr)
			}
			assertNoCanary(t, "error", err.Error())
			assertNoCanary(t, "logs", h.logText())
			if keys, _ := h.st.List(context.Background(), prefixClients); len(keys) != 0 {
				t.Errorf("stored clients: %v", keys)
			}
		})
	}
}

func TestDCRSecretExpiry(t *testing.T) {
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) {
		a.onRegister = func(w http.ResponseWriter, body map[string]any) bool {
			id := fmt.Sprintf("client-%d", a.n.Add(1))
			secret := a.canary("SECRET")
			a.mu.Lock()
			a.clients[id] = secret
			a.mu.Unlock()
			w.WriteHeader(201)
			json.NewEncoder(w).Encode(map[string]any{"client_id": id, "client_secret": secret,
				"client_secret_expires_at": h.clock.Now().Add(time.Hour).Unix()})
			return true
		}
	})
	h.connect(h.as, "notion", "alice")
	h.clock.Add(30 * time.Minute)
	h.connect(h.as, "notion", "alice")
	h.clock.Add(time.Hour)
	h.connect(h.as, "notion", "alice")
	if n := len(h.as.registers); n != 2 {
		t.Fatalf("%d registrations, want 2 (again once the secret expired)", n)
	}
	// The secret is in the store (which seals it), not in any log.
	if !strings.Contains(h.st.dump(), "SECRET-CANARY") {
		t.Error("the client secret was not stored")
	}
	assertNoCanary(t, "logs", h.logText())
}

// switchable is a Discover that returns whichever server is current.
type switchable struct{ current atomic.Pointer[fakeAS] }

func (s *switchable) discover(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
	return s.current.Load().discover(ctx, resource, ch)
}

// sawAny reports whether a received anything containing one of needles.
func sawAny(a *fakeAS, needles ...string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	hay := fmt.Sprint(a.authorizes, a.registers)
	for _, r := range append(a.tokenReqs, a.revokes...) {
		hay += fmt.Sprint(r.form, r.user, r.pass, r.header)
	}
	for _, n := range needles {
		if n != "" && strings.Contains(hay, n) {
			return true
		}
	}
	return false
}

func TestServerMigration(t *testing.T) {
	// The resource moves to another authorization server, which never sees
	// the first one's client.
	for _, mode := range []string{"dcr", "static-auto", "static"} {
		t.Run(mode, func(t *testing.T) {
			var sw switchable
			as2 := newFakeAS(t, "as2")
			h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
				(*cfgs)[0].Discover = sw.discover
				if mode != "dcr" {
					(*cfgs)[0].ClientID, (*cfgs)[0].ClientSecret = "static-client", "STATIC-SECRET-CANARY"
				}
				if mode == "static" {
					(*cfgs)[0].Registration = RegistrationStatic
				}
			})
			sw.current.Store(h.as)
			h.as.clients["static-client"] = "STATIC-SECRET-CANARY"
			h.connect(h.as, "notion", "alice")
			as1Client := h.grant("notion", "alice").ClientID
			sw.current.Store(as2)
			h.m.conns["notion"].discovered.Store(nil)
			authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
			if mode == "static" {
				if !errors.Is(err, ErrMisconfigured) {
					t.Fatalf("Start = %v, want misconfigured", err)
				}
				if c := h.m.Connection(context.Background(), "notion", "alice"); c.Status() != connectors.StatusMisconfigured {
					t.Errorf("connection = %+v", c)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := h.m.Callback(context.Background(), as2.authorize(t, authURL, "alice"), "alice"); err != nil {
					t.Fatal(err)
				}
				if len(as2.registers) != 1 {
					t.Errorf("%d registrations at the new server", len(as2.registers))
				}
			}
			if sawAny(as2, as1Client, "STATIC-SECRET-CANARY", "static-client") {
				t.Fatalf("the new server saw the old server's client %q", as1Client)
			}
		})
	}
}

func TestConfiguredIssuerNotMixed(t *testing.T) {
	// Config names the issuer; discovery finds another server, which never
	// sees the static client.
	evil := newFakeAS(t, "evil")
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0].Discover = evil.discover
		(*cfgs)[0].ClientID, (*cfgs)[0].ClientSecret = "static-client", "STATIC-SECRET-CANARY"
		(*cfgs)[0].Issuer = "https://honest.example.test"
	})
	_, err := h.m.Start(context.Background(), "notion", "alice", "")
	if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), "not the configured issuer") {
		t.Fatalf("Start = %v", err)
	}
	if sawAny(evil, "static-client", "STATIC-SECRET-CANARY") || evil.tokenCalls.Load() != 0 {
		t.Fatal("the other server saw the static client")
	}
}

func TestCIMD(t *testing.T) {
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.meta.ClientIDMetadataDocumentSupported = true })
	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	if got := u.Query().Get("client_id"); got != publicURL+ClientMetadataPath {
		t.Fatalf("client_id = %q", got)
	}
	if _, err := h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice"); err != nil {
		t.Fatal(err)
	}
	req := h.as.tokenRequests()[0]
	if req.hasBasic || req.form.Has("client_secret") || req.form.Get("client_id") != publicURL+ClientMetadataPath {
		t.Errorf("token request auth: %v", req.form)
	}
	if len(h.as.registers) != 0 {
		t.Error("registered despite CIMD")
	}

	// Not over http: a loopback public URL registers instead; cimd alone
	// is then misconfigured.
	h2 := newHarness(t, func(_ *harness, o *Options, cfgs *[]Config) {
		o.PublicURL = "http://127.0.0.1:8080"
		c := h.as.config("linear")
		c.Registration = RegistrationCIMD
		*cfgs = append(*cfgs, c)
	})
	h2.as.set(func(a *fakeAS) { a.meta.ClientIDMetadataDocumentSupported = true })
	h2.connect(h2.as, "notion", "alice")
	if len(h2.as.registers) != 1 {
		t.Error("no registration with an http public URL")
	}
	if _, err := h2.m.Start(context.Background(), "linear", "alice", ""); !errors.Is(err, ErrMisconfigured) {
		t.Errorf("cimd over http: %v", err)
	}
}

func TestMisconfiguredServers(t *testing.T) {
	tests := []struct {
		name   string
		change func(*discovery.ServerMetadata)
		reason string
	}{
		{"no registration", func(m *discovery.ServerMetadata) { m.RegistrationEndpoint = "" },
			"the authorization server offers no registration and no client_id is configured"},
		{"no pkce", func(m *discovery.ServerMetadata) { m.CodeChallengeMethodsSupported = nil }, "PKCE"},
		{"plain pkce", func(m *discovery.ServerMetadata) { m.CodeChallengeMethodsSupported = []string{"plain"} }, "PKCE"},
		{"http registration", func(m *discovery.ServerMetadata) { m.RegistrationEndpoint = "http://10.0.0.1/register" }, "https"},
		{"no token endpoint", func(m *discovery.ServerMetadata) { m.TokenEndpoint = "" }, "token_endpoint"},
		{"crlf endpoint", func(m *discovery.ServerMetadata) { m.AuthorizationEndpoint += "\r\nx" }, "control characters"},
		{"fragment", func(m *discovery.ServerMetadata) { m.AuthorizationEndpoint += "#f" }, "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) { tt.change(&a.meta) })
			ctx := context.Background()
			_, err := h.m.Start(ctx, "notion", "alice", "")
			if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Start = %v, want misconfigured: %s", err, tt.reason)
			}
			c := h.m.Connection(ctx, "notion", "alice")
			if c.State != connectors.StateError || c.Status() != connectors.StatusMisconfigured || !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("connection = %+v", c)
			}
			var ce *ConsentError
			if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Status != connectors.StatusMisconfigured {
				t.Errorf("Token = %v", err)
			}
		})
	}
}

func TestStaticClientAuthMethods(t *testing.T) {
	for _, method := range []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone} {
		t.Run(method, func(t *testing.T) {
			secret := "STATIC-SECRET-CANARY:/+&="
			if method == AuthMethodNone {
				secret = ""
			}
			h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
				(*cfgs)[0].ClientID, (*cfgs)[0].ClientSecret, (*cfgs)[0].TokenAuthMethod = "static:client", secret, method
			})
			h.as.clients["static:client"] = secret
			h.connect(h.as, "notion", "alice")
			if len(h.as.registers) != 0 {
				t.Error("registered despite a static client")
			}
			req := h.as.tokenRequests()[0]
			if method == AuthMethodBasic != req.hasBasic {
				t.Errorf("basic = %v", req.hasBasic)
			}
			if binding := h.st.dump(); !strings.Contains(binding, "_static") {
				t.Error("the static client's server was not remembered")
			}
		})
	}
}

func TestWithoutDiscovery(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
		c, a := &(*cfgs)[0], h.as
		c.Discover, c.Issuer = nil, a.Issuer
		c.AuthorizationEndpoint, c.TokenEndpoint, c.RegistrationEndpoint = a.Issuer+"/authorize", a.Issuer+"/token", a.Issuer+"/register"
	})
	h.connect(h.as, "notion", "alice")
	if _, err := h.token("notion", "alice"); err != nil || h.as.discovers.Load() != 0 {
		t.Fatalf("Token = %v after %d discoveries", err, h.as.discovers.Load())
	}
}
