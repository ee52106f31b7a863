package oauthflow

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/oauth2"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// fakeAS is a programmable authorization server on 127.0.0.1 that records
// what it receives. By default it behaves: single-use codes bound to their
// PKCE challenge, redirect URI, client and resource; rotating refresh
// tokens; open registration; revocation that answers 200. Every token,
// code and secret it makes is a unique canary.
type fakeAS struct {
	t      testing.TB
	srv    *httptest.Server
	Issuer string
	tag    string // names its canaries

	mu         sync.Mutex
	meta       discovery.ServerMetadata
	scopes     []string // Result.Scopes of discovery
	codes      map[string]codeFor
	refresh    map[string]codeFor // live refresh token → its client and login
	clients    map[string]string  // client_id → secret ("" public)
	tokenReqs  []request
	registers  []map[string]any
	revokes    []request
	authorizes []url.Values
	onToken    func(w http.ResponseWriter, r request) bool // true: handled
	onRegister func(w http.ResponseWriter, body map[string]any) bool
	onRevoke   func(w http.ResponseWriter, r request) bool
	expiresIn  any  // expires_in of issued tokens; nil: 3600
	noRotate   bool // keep the refresh token on refresh
	noRefresh  bool // issue no refresh token
	grantScope string
	// extra adds members to each token response for the grant c.
	extra func(c codeFor) map[string]any

	n          atomic.Int64
	tokenCalls atomic.Int64
	discovers  atomic.Int64
}

// codeFor is what an authorization code was issued for.
type codeFor struct {
	challenge, redirect, clientID, resource string
	login                                   string // who consented; tags the tokens
}

// request is one form request as received.
type request struct {
	form       url.Values
	user, pass string // Basic credentials, unescaped
	hasBasic   bool
	header     http.Header
}

func newFakeAS(t testing.TB, tag string) *fakeAS {
	a := &fakeAS{t: t, tag: tag, codes: map[string]codeFor{}, refresh: map[string]codeFor{}, clients: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", a.token)
	mux.HandleFunc("POST /register", a.register)
	mux.HandleFunc("POST /revoke", a.revoke)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.Issuer = a.srv.URL
	a.meta = discovery.ServerMetadata{
		Issuer:                        a.Issuer,
		AuthorizationEndpoint:         a.Issuer + "/authorize?tenant=t1",
		TokenEndpoint:                 a.Issuer + "/token",
		RegistrationEndpoint:          a.Issuer + "/register",
		RevocationEndpoint:            a.Issuer + "/revoke",
		CodeChallengeMethodsSupported: []string{"S256"},
		AuthorizationResponseIssParameterSupported: true,
	}
	a.scopes = []string{"read"}
	return a
}

// canary returns a fresh unique secret-looking string.
func (a *fakeAS) canary(kind string) string {
	return fmt.Sprintf("%s-CANARY-%s-%d", kind, a.tag, a.n.Add(1))
}

// set changes the server under its lock.
func (a *fakeAS) set(f func(a *fakeAS)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// discover is a Config.Discover that returns this server.
func (a *fakeAS) discover(_ context.Context, resource string, _ *discovery.Challenge) (*discovery.Result, error) {
	a.discovers.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	return &discovery.Result{Resource: discovery.ResourceMetadata{Resource: resource, AuthorizationServers: []string{a.meta.Issuer}},
		Server: a.meta, Scopes: a.scopes}, nil
}

// authorize plays the browser and the consent page: it reads the
// authorization URL, issues a code bound to it for login, and returns the
// callback query the server would redirect with.
func (a *fakeAS) authorize(t testing.TB, authURL, login string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("auth url: %v", err)
	}
	q := u.Query()
	code := a.canary("CODE")
	a.mu.Lock()
	a.authorizes = append(a.authorizes, q)
	a.codes[code] = codeFor{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), clientID: q.Get("client_id"),
		resource: q.Get("resource"), login: login}
	iss := a.meta.AuthorizationResponseIssParameterSupported
	a.mu.Unlock()
	cb := url.Values{"code": {code}, "state": {q.Get("state")}}
	if iss {
		cb.Set("iss", a.Issuer)
	}
	return cb
}

func readRequest(r *http.Request) request {
	r.ParseForm()
	req := request{form: r.PostForm, header: r.Header.Clone()}
	if u, p, ok := r.BasicAuth(); ok {
		req.user, _ = url.QueryUnescape(u)
		req.pass, _ = url.QueryUnescape(p)
		req.hasBasic = true
	}
	return req
}

// clientOf authenticates the request's client, returning its id or "".
func (a *fakeAS) clientOf(r request) string {
	id, secret := r.form.Get("client_id"), r.form.Get("client_secret")
	if r.hasBasic {
		id, secret = r.user, r.pass
	}
	want, known := a.clients[id]
	switch {
	case strings.HasPrefix(id, "https://"): // a client ID metadata document
		return id
	case !known || want != secret:
		return ""
	}
	return id
}

func (a *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	a.tokenCalls.Add(1)
	req := readRequest(r)
	a.mu.Lock()
	a.tokenReqs = append(a.tokenReqs, req)
	hook := a.onToken
	a.mu.Unlock()
	if hook != nil && hook(w, req) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	client := a.clientOf(req)
	if client == "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch req.form.Get("grant_type") {
	case "authorization_code":
		c, ok := a.codes[req.form.Get("code")]
		delete(a.codes, req.form.Get("code"))
		if !ok || c.clientID != client || c.redirect != req.form.Get("redirect_uri") || c.resource != req.form.Get("resource") ||
			c.challenge != oauth2.S256ChallengeFromVerifier(req.form.Get("code_verifier")) {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		a.issue(w, c, "")
	case "refresh_token":
		rt := req.form.Get("refresh_token")
		c, ok := a.refresh[rt]
		if !ok || c.clientID != client || c.resource != req.form.Get("resource") {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		if !a.noRotate {
			delete(a.refresh, rt)
			rt = ""
		}
		a.issue(w, c, rt)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// issue answers with fresh tokens for the grant c; keepRT is the refresh
// token to keep, "" to rotate. The lock is held.
func (a *fakeAS) issue(w http.ResponseWriter, c codeFor, keepRT string) {
	resp := map[string]any{"access_token": a.canary("AT-" + c.login), "token_type": "Bearer"}
	if a.expiresIn == nil {
		resp["expires_in"] = 3600
	} else {
		resp["expires_in"] = a.expiresIn
	}
	if a.grantScope != "" {
		resp["scope"] = a.grantScope
	}
	if a.extra != nil {
		maps.Copy(resp, a.extra(c))
	}
	if keepRT == "" && !a.noRefresh {
		rt := a.canary("RT-" + c.login)
		a.refresh[rt] = c
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`, code)
}

func (a *fakeAS) register(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	a.mu.Lock()
	a.registers = append(a.registers, body)
	hook := a.onRegister
	a.mu.Unlock()
	if hook != nil && hook(w, body) {
		return
	}
	id, secret := fmt.Sprintf("client-%s-%d", a.tag, a.n.Add(1)), ""
	method, _ := body["token_endpoint_auth_method"].(string)
	resp := map[string]any{"client_id": id, "redirect_uris": body["redirect_uris"], "token_endpoint_auth_method": method}
	if method != AuthMethodNone {
		secret = a.canary("SECRET")
		resp["client_secret"] = secret
	}
	a.mu.Lock()
	a.clients[id] = secret
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(resp)
}

func (a *fakeAS) revoke(w http.ResponseWriter, r *http.Request) {
	req := readRequest(r)
	a.mu.Lock()
	a.revokes = append(a.revokes, req)
	hook := a.onRevoke
	a.mu.Unlock()
	if hook != nil && hook(w, req) {
		return
	}
	a.mu.Lock()
	delete(a.refresh, req.form.Get("token"))
	a.mu.Unlock()
}

// tokenRequests returns a copy of the token requests received.
func (a *fakeAS) tokenRequests() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]request(nil), a.tokenReqs...)
}

// revokeRequests returns a copy of the revocation requests received.
func (a *fakeAS) revokeRequests() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]request(nil), a.revokes...)
}

// harness is a Manager wired to fake authorization servers, a memory
// store, a fake clock and an observed logger.
type harness struct {
	t     testing.TB
	m     *Manager
	st    *memStore
	clock *fakeClock
	logs  *observer.ObservedLogs
	as    *fakeAS
}

// config is a connector of a, per-user unless changed.
func (a *fakeAS) config(id string) Config {
	return Config{Connector: id, OAuthConfig: connectors.OAuthConfig{Resource: "https://mcp." + id + ".test/mcp", Consent: PerUser,
		InsecureLoopback: true}, HTTP: a.srv.Client(), Discover: a.discover}
}

// publicURL is the harness's public URL.
const publicURL = "https://gw.example.test"

// newHarness starts a fake AS and a Manager with one connector "notion"
// (changed by tweak, which may also add connectors).
func newHarness(t testing.TB, tweak func(h *harness, opts *Options, cfgs *[]Config)) *harness {
	h := &harness{t: t, clock: newClock(), as: newFakeAS(t, "as1")}
	h.st = newMemStore(h.clock.Now)
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	opts := Options{Store: h.st, PublicURL: publicURL, StateKey: []byte("0123456789abcdef0123456789abcdef"),
		Now: h.clock.Now, Logger: zap.New(core), AllowedRedirects: []string{"https://app.example.test"}}
	cfgs := []Config{h.as.config("notion")}
	if tweak != nil {
		tweak(h, &opts, &cfgs)
	}
	m, err := New(opts, cfgs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(m.Close)
	h.m = m
	return h
}

// connect runs a whole consent for user at connector, through a.
func (h *harness) connect(a *fakeAS, connector, user string) Outcome {
	h.t.Helper()
	authURL, err := h.m.Start(context.Background(), connector, user, "")
	if err != nil {
		h.t.Fatalf("Start %s: %v", connector, err)
	}
	out, err := h.m.Callback(context.Background(), a.authorize(h.t, authURL, user), user)
	if err != nil {
		h.t.Fatalf("Callback %s: %v", connector, err)
	}
	return out
}

// token asks for a token.
func (h *harness) token(connector, user string) (Token, error) {
	return h.m.Token(context.Background(), TokenRequest{Connector: connector, User: user})
}

// grant reads a grant straight from the store.
func (h *harness) grant(connector, subject string) grantRecord {
	h.t.Helper()
	g, err := h.m.readGrant(context.Background(), grantKey(connector, subject))
	if err != nil {
		h.t.Fatal(err)
	}
	return g.rec
}

// logText is every captured log entry with its fields, for canary sweeps.
func (h *harness) logText() string {
	var b strings.Builder
	for _, e := range h.logs.All() {
		b.WriteString(e.Message)
		b.WriteString(fmt.Sprint(e.ContextMap()))
		b.WriteByte('\n')
	}
	return b.String()
}

// newObserved returns a zap core that keeps what it is given.
func newObserved() (zapcore.Core, *observer.ObservedLogs) { return observer.New(zap.DebugLevel) }

// assertNoCanary fails if text holds any canary.
func assertNoCanary(t testing.TB, where, text string) {
	t.Helper()
	if strings.Contains(text, "CANARY") {
		t.Errorf("%s leaks a secret: %q", where, text)
	}
}
