package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// wantCallbackError fails unless err is a *CallbackError with status and a
// description containing text.
func wantCallbackError(t *testing.T, err error, status int, text string) *CallbackError {
	t.Helper()
	var ce *CallbackError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a *CallbackError", err)
	}
	if ce.Status != status || !strings.Contains(ce.Description, text) {
		t.Fatalf("callback error = %d %q, want %d containing %q", ce.Status, ce.Description, status, text)
	}
	return ce
}

func TestConnectHappyPath(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	authURL, err := h.m.Start(ctx, "notion", "alice", "https://app.example.test/done")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	// RFC 6749 §3.1: the endpoint's own query stays; each of ours appears
	// once.
	if q.Get("tenant") != "t1" {
		t.Errorf("endpoint query lost: %s", authURL)
	}
	for _, p := range ownParams {
		if p != "audience" && len(q[p]) != 1 {
			t.Errorf("%s appears %d times in %s", p, len(q[p]), authURL)
		}
	}
	want := map[string]string{"response_type": "code", "code_challenge_method": "S256", "scope": "read",
		"redirect_uri": publicURL + CallbackPath, "resource": "https://mcp.notion.test/mcp"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	out, err := h.m.Callback(ctx, h.as.authorize(t, authURL, "alice"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if out != (Outcome{Connector: "notion", RedirectURL: "https://app.example.test/done"}) {
		t.Errorf("outcome = %+v", out)
	}
	tok, err := h.token("notion", "alice")
	if err != nil || !strings.HasPrefix(tok.Header, "Bearer AT-alice-CANARY") || !strings.HasPrefix(tok.Key, "oauth:") {
		t.Fatalf("Token = %v %v", tok, err)
	}
	if c := h.m.Connection(ctx, "notion", "alice"); c.State != connectors.StateActive || c.Status() != connectors.StatusReady {
		t.Errorf("connection = %+v", c)
	}
	reqs := h.as.tokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d token requests", len(reqs))
	}
	f := reqs[0].form
	if f.Get("resource") != "https://mcp.notion.test/mcp" || f.Get("code_verifier") == "" || f.Get("redirect_uri") != publicURL+CallbackPath {
		t.Errorf("exchange form = %v", f)
	}
	// Registered without token_endpoint_auth_methods_supported: basic.
	if !reqs[0].hasBasic || f.Has("client_secret") {
		t.Errorf("client auth: basic=%v form=%v", reqs[0].hasBasic, f)
	}
	assertNoCanary(t, "logs", h.logText())
}

func TestCallbackStateChecks(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	authURL, err := h.m.Start(ctx, "notion", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	good := h.as.authorize(t, authURL, "alice")
	state := good.Get("state")
	other, _ := h.m.Start(ctx, "notion", "alice", "")
	otherState := h.as.authorize(t, other, "alice").Get("state")
	idPart, macPart, _ := strings.Cut(state, ".")
	_, otherMAC, _ := strings.Cut(otherState, ".")

	bad := map[string]string{
		"no mac":          idPart,
		"empty mac":       idPart + ".",
		"truncated mac":   state[:len(state)-2],
		"swapped mac":     idPart + "." + otherMAC,
		"padding":         idPart + "==." + macPart,
		"std alphabet":    strings.NewReplacer("-", "+", "_", "/").Replace(state) + "+/",
		"crlf":            idPart[:5] + "\r\n" + idPart[5:] + "." + macPart,
		"space":           state + " ",
		"jwt-like":        "eyJhbGciOiJub25lIn0.eyJpZCI6IngifQ.",
		"too long":        state + strings.Repeat("A", 100),
		"extra dot":       state + ".x",
		"mac only":        "." + macPart,
		"non-ascii":       idPart + ".é" + macPart[2:],
		"trailing bits":   idPart[:len(idPart)-1] + "B" + "." + macPart,
		"duplicate state": "",
	}
	// Flip every character of the handle, one at a time.
	for i := range state {
		b := []byte(state)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		bad[fmt.Sprintf("flip %d", i)] = string(b)
	}
	for name, s := range bad {
		q := url.Values{"code": {"CODE-CANARY-x"}, "state": {s}, "iss": {h.as.Issuer}}
		if name == "duplicate state" {
			q["state"] = []string{state, state}
		}
		_, err := h.m.Callback(ctx, q, "alice")
		if s == state {
			continue // a flip that changed nothing (cannot happen: A↔B)
		}
		wantCallbackError(t, err, http.StatusBadRequest, "invalid state")
	}
	// No state at all.
	_, err = h.m.Callback(ctx, url.Values{"code": {"x"}}, "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "missing state")
	if n := h.as.tokenCalls.Load(); n != 0 {
		t.Fatalf("%d token calls for bad states, want 0", n)
	}
	// The tampering consumed nothing: the real callback still works.
	if _, err := h.m.Callback(ctx, good, "alice"); err != nil {
		t.Fatalf("good callback after tampering: %v", err)
	}
}

func TestCallbackExpired(t *testing.T) {
	// The store's TTL runs on real time, so the flow's own creation time
	// against the injected clock is what expires it.
	h := newHarness(t, func(_ *harness, o *Options, _ *[]Config) { o.Store = newMemStore(time.Now) })
	ctx := context.Background()
	authURL, _ := h.m.Start(ctx, "notion", "alice", "")
	q := h.as.authorize(t, authURL, "alice")
	h.clock.Add(flowTTL + time.Second)
	_, err := h.m.Callback(ctx, q, "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "expired")
	// The pending record is purged: the same state now finds nothing.
	h.clock.Add(-flowTTL)
	_, err = h.m.Callback(ctx, q, "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "state already used or expired")

	// Created in the future beyond the skew.
	authURL, _ = h.m.Start(ctx, "notion", "alice", "")
	q = h.as.authorize(t, authURL, "alice")
	h.clock.Add(-2 * clockSkew)
	_, err = h.m.Callback(ctx, q, "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "invalid state")

	// And the store's own TTL, on the same clock as the Manager.
	h2 := newHarness(t, nil)
	authURL, _ = h2.m.Start(ctx, "notion", "alice", "")
	q = h2.as.authorize(t, authURL, "alice")
	h2.clock.Add(flowTTL + time.Second)
	_, err = h2.m.Callback(ctx, q, "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "expired")
	if h.as.tokenCalls.Load()+h2.as.tokenCalls.Load() != 0 {
		t.Fatal("expired callbacks made token calls")
	}
}

func TestCallbackReplay(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	authURL, _ := h.m.Start(ctx, "notion", "alice", "")
	q := h.as.authorize(t, authURL, "alice")
	if _, err := h.m.Callback(ctx, q, "alice"); err != nil {
		t.Fatal(err)
	}
	before := h.grant("notion", "alice")
	_, err := h.m.Callback(ctx, q, "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "state already used or expired")
	if after := h.grant("notion", "alice"); after.AccessToken != before.AccessToken {
		t.Error("a replay changed the stored credential")
	}

	// Concurrent replays: exactly one redemption.
	authURL, _ = h.m.Start(ctx, "notion", "alice", "")
	q = h.as.authorize(t, authURL, "alice")
	calls := h.as.tokenCalls.Load()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 20 {
		wg.Go(func() {
			if _, err := h.m.Callback(ctx, q, "alice"); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 || h.as.tokenCalls.Load()-calls != 1 {
		t.Fatalf("%d concurrent callbacks succeeded with %d token requests, want 1 and 1", ok, h.as.tokenCalls.Load()-calls)
	}
}

func TestCallbackOtherUser(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, who := range []string{"bob", ""} {
		authURL, _ := h.m.Start(ctx, "notion", "alice", "")
		out, err := h.m.Callback(ctx, h.as.authorize(t, authURL, "bob"), who)
		wantCallbackError(t, err, http.StatusForbidden, "this consent was started by another user")
		if out.Connector != "notion" {
			t.Errorf("outcome = %+v", out)
		}
	}
	if h.as.tokenCalls.Load() != 0 {
		t.Fatal("token calls for another user's callback")
	}
	for _, u := range []string{"alice", "bob"} {
		if g := h.grant("notion", u); g.AccessToken != "" || g.Connection.State == connectors.StateActive {
			t.Errorf("%s: a grant was stored: %v", u, g)
		}
	}
}

func TestCallbackIss(t *testing.T) {
	other := "https://other.example.test"
	tests := []struct {
		name       string
		advertised bool
		iss        []string // nil: absent
		extra      url.Values
		wantOK     bool
	}{
		{"advertised, absent", true, nil, nil, false},
		{"another issuer", true, []string{other}, nil, false},
		{"unadvertised, mismatched", false, []string{other}, nil, false},
		{"case", true, []string{"HTTP{issuer-scheme}"}, nil, false},
		{"trailing slash", true, []string{"{issuer}/"}, nil, false},
		{"default port", true, []string{"{issuer}:80"}, nil, false},
		{"percent-encoded", true, []string{"{issuer}%2F"}, nil, false},
		{"empty", true, []string{""}, nil, false},
		{"twice", true, []string{"{issuer}", "{issuer}"}, nil, false},
		{"mismatched error", true, []string{other}, url.Values{"error": {"access_denied"}, "error_description": {"SHOWN"}}, false},
		{"unadvertised, absent", false, nil, nil, true},
		{"advertised, equal", true, []string{"{issuer}"}, nil, true},
		{"unadvertised, equal", false, []string{"{issuer}"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) { a.meta.AuthorizationResponseIssParameterSupported = tt.advertised })
			authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			q := h.as.authorize(t, authURL, "alice")
			q.Del("iss")
			for _, v := range tt.iss {
				v = strings.ReplaceAll(v, "{issuer-scheme}", strings.TrimPrefix(h.as.Issuer, "http"))
				q.Add("iss", strings.ReplaceAll(v, "{issuer}", h.as.Issuer))
			}
			for k, v := range tt.extra {
				q[k] = v
			}
			_, err = h.m.Callback(context.Background(), q, "alice")
			if tt.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ce := wantCallbackError(t, err, http.StatusBadRequest, "")
			if ce.Code != "invalid_request" || strings.Contains(ce.Description, "SHOWN") {
				t.Errorf("error = %+v", ce)
			}
			if h.as.tokenCalls.Load() != 0 {
				t.Error("token call despite iss")
			}
		})
	}
}

func TestCallbackTokenEndpointPinned(t *testing.T) {
	// Metadata changes between start and callback; the code goes to the
	// token endpoint recorded at the start (RFC 9700 §4.4.2).
	h := newHarness(t, nil)
	evil := newFakeAS(t, "evil")
	ctx := context.Background()
	authURL, _ := h.m.Start(ctx, "notion", "alice", "")
	h.as.set(func(a *fakeAS) { a.meta.TokenEndpoint = evil.Issuer + "/token" })
	h.m.conns["notion"].discovered.Store(nil)
	if _, err := h.m.Callback(ctx, h.as.authorize(t, authURL, "alice"), "alice"); err != nil {
		t.Fatal(err)
	}
	if evil.tokenCalls.Load() != 0 || h.as.tokenCalls.Load() != 1 {
		t.Fatalf("token calls: recorded %d, changed %d", h.as.tokenCalls.Load(), evil.tokenCalls.Load())
	}
}

func TestCallbackRedirectFromVerifiedStateOnly(t *testing.T) {
	// An unverifiable state never yields a redirect.
	h := newHarness(t, nil)
	ctx := context.Background()
	out, err := h.m.Callback(ctx, url.Values{"state": {"bogus"}, "error": {"access_denied"}, "redirect_url": {"https://evil.test"}}, "alice")
	if err == nil || out.RedirectURL != "" || out.ErrorRedirect(&CallbackError{Code: "x"}) != "" {
		t.Fatalf("outcome = %+v, %v", out, err)
	}
	authURL, _ := h.m.Start(ctx, "notion", "alice", "https://app.example.test/back?x=1")
	q := h.as.authorize(t, authURL, "alice")
	q.Set("redirect_url", "https://evil.test")
	q.Del("code")
	q.Set("error", "access_denied")
	out, err = h.m.Callback(ctx, q, "alice")
	ce := wantCallbackError(t, err, http.StatusForbidden, "")
	if out.RedirectURL != "https://app.example.test/back?x=1" {
		t.Fatalf("redirect = %q", out.RedirectURL)
	}
	r, _ := url.Parse(out.ErrorRedirect(ce))
	if r.Host != "app.example.test" || r.Query().Get("error") != "access_denied" || r.Query().Get("x") != "1" {
		t.Errorf("error redirect = %s", r)
	}
}

func TestCallbackServerErrors(t *testing.T) {
	// Errors from the server, passed on sanitized.
	long := strings.Repeat("é", 6000)
	tests := []struct {
		name, code, desc string
		wantCode         string
		wantStatus       int
	}{
		{"denied", "access_denied", "user said no", "access_denied", http.StatusForbidden},
		{"script", "invalid_scope", "<script>alert(1)</script>", "invalid_scope", http.StatusBadRequest},
		{"long", "server_error", long, "server_error", http.StatusBadGateway},
		{"invalid utf-8", "access_denied", "a\xff\xfeb", "access_denied", http.StatusForbidden},
		{"crlf", "access_denied", "a\r\nSet-Cookie: x=1", "access_denied", http.StatusForbidden},
		{"unknown code", "evil\r\ncode", "x", "server_error", http.StatusBadGateway},
		{"oidc code", "login_required", "", "server_error", http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			authURL, _ := h.m.Start(context.Background(), "notion", "alice", "https://app.example.test/")
			q := h.as.authorize(t, authURL, "alice")
			q.Del("code")
			q.Set("error", tt.code)
			q.Set("error_description", tt.desc)
			q.Set("error_uri", "javascript:alert(1)")
			out, err := h.m.Callback(context.Background(), q, "alice")
			ce := wantCallbackError(t, err, tt.wantStatus, "")
			if ce.Code != tt.wantCode || len(ce.Description) > maxDescription || !utf8.ValidString(ce.Description) ||
				strings.ContainsAny(ce.Description, "\r\n\x00") || strings.Contains(ce.Error(), "javascript") {
				t.Errorf("error = %+v", ce)
			}
			if r := out.ErrorRedirect(ce); strings.ContainsAny(r, "\r\n <>") || strings.Contains(r, "javascript") {
				t.Errorf("redirect = %q", r)
			}
			if h.as.tokenCalls.Load() != 0 {
				t.Error("token call after an error response")
			}
		})
	}
}

func TestParallelFlows(t *testing.T) {
	// Parallel consents do not break each other: two connectors, completed
	// in reverse order; two tabs for one.
	var as2 *fakeAS
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		as2 = newFakeAS(t, "as2")
		*cfgs = append(*cfgs, as2.config("github"))
	})
	ctx := context.Background()
	urlA, _ := h.m.Start(ctx, "notion", "alice", "")
	urlB, _ := h.m.Start(ctx, "github", "alice", "")
	urlA2, _ := h.m.Start(ctx, "notion", "alice", "")
	qA, qB, qA2 := h.as.authorize(t, urlA, "alice"), as2.authorize(t, urlB, "alice"), h.as.authorize(t, urlA2, "alice")
	for _, q := range []url.Values{qB, qA2, qA} {
		if _, err := h.m.Callback(ctx, q, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"notion", "github"} {
		if _, err := h.token(c, "alice"); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	if g := h.grant("notion", "alice"); g.Generation != 2 {
		t.Errorf("generation = %d, want 2 (last completed wins)", g.Generation)
	}
}

func TestOneRedemptionPerCode(t *testing.T) {
	// One redemption per code: an explicit auth style, so no second attempt.
	for _, name := range []string{"invalid_client", "dropped"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) {
				a.onToken = func(w http.ResponseWriter, _ request) bool {
					if name == "dropped" {
						conn, _, _ := w.(http.Hijacker).Hijack()
						conn.Close()
						return true
					}
					oauthError(w, http.StatusBadRequest, "invalid_client")
					return true
				}
			})
			authURL, _ := h.m.Start(context.Background(), "notion", "alice", "")
			_, err := h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice")
			wantCallbackError(t, err, http.StatusBadGateway, "issued no token")
			if n := h.as.tokenCalls.Load(); n != 1 {
				t.Fatalf("%d token requests, want 1", n)
			}
		})
	}
}

func TestTokenResponseValidation(t *testing.T) {
	// A token response is checked as hostile input: a bad one is a clear
	// error, and absent or odd fields get a documented default.
	huge := `{"access_token":"AT-CANARY-big","token_type":"Bearer","pad":"` + strings.Repeat("x", 1536<<10) + `"}`
	tests := []struct {
		name, body, ctype string
		wantErr           string // "" for success
		wantExpiry        time.Duration
	}{
		{"ok", `{"access_token":"AT-CANARY-1","token_type":"Bearer","expires_in":60}`, "", "", time.Minute},
		{"lowercase bearer", `{"access_token":"AT-CANARY-1","token_type":"bearer"}`, "", "", 0},
		{"no token_type", `{"access_token":"AT-CANARY-1"}`, "", "", 0},
		{"string expires_in", `{"access_token":"AT-CANARY-1","expires_in":"120"}`, "", "", 2 * time.Minute},
		{"zero expires_in", `{"access_token":"AT-CANARY-1","expires_in":0}`, "", "", 0},
		{"huge expires_in", `{"access_token":"AT-CANARY-1","expires_in":99999999999999999999}`, "", "", maxExpiresIn},
		{"unknown fields", `{"access_token":"AT-CANARY-1","x":{"y":[1]},"id_token":"z"}`, "", "", 0},
		{"form encoded", `access_token=AT-CANARY-1&token_type=bearer&expires_in=60`, "application/x-www-form-urlencoded", "", time.Minute},
		{"missing access_token", `{"token_type":"Bearer"}`, "", "no access_token", 0},
		{"dpop", `{"access_token":"AT-CANARY-1","token_type":"DPoP"}`, "", "DPoP", 0},
		{"mac", `{"access_token":"AT-CANARY-1","token_type":"mac"}`, "", "mac", 0},
		{"negative expires_in", `{"access_token":"AT-CANARY-1","expires_in":-5}`, "", "negative", 0},
		{"fractional expires_in", `{"access_token":"AT-CANARY-1","expires_in":1.5}`, "", "whole number", 0},
		{"error with 200", `{"error":"invalid_grant","access_token":"AT-CANARY-1"}`, "", "invalid_grant", 0},
		{"html", `<html>AT-CANARY-1</html>`, "text/html", "not a token response", 0},
		{"huge body", huge, "", "larger than", 0},
		{"header injection", `{"access_token":"AT-CANARY-1\r\nX-Evil: 1"}`, "", "control characters", 0},
		{"space in token", `{"access_token":"AT-CANARY 1"}`, "", "spaces", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) {
				a.onToken = func(w http.ResponseWriter, _ request) bool {
					ct := tt.ctype
					if ct == "" {
						ct = "application/json"
					}
					w.Header().Set("Content-Type", ct)
					w.Write([]byte(tt.body))
					return true
				}
			})
			authURL, _ := h.m.Start(context.Background(), "notion", "alice", "")
			_, err := h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice")
			g := h.grant("notion", "alice")
			if tt.wantErr != "" {
				wantCallbackError(t, err, http.StatusBadGateway, tt.wantErr)
				assertNoCanary(t, "error", err.Error())
				if g.AccessToken != "" || g.Connection.State != connectors.StatePending {
					t.Errorf("half-stored grant: %v", g)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Expiry; (tt.wantExpiry == 0) != got.IsZero() || (!got.IsZero() && got.Sub(h.clock.Now()) != tt.wantExpiry) {
				t.Errorf("expiry = %v, want now+%v", got, tt.wantExpiry)
			}
		})
	}
}

func TestNoRedirectsFollowed(t *testing.T) {
	// RFC 9700 §4.12: a token request is never replayed to a redirect.
	h := newHarness(t, nil)
	target := newFakeAS(t, "target")
	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, _ request) bool {
			w.Header().Set("Location", target.Issuer+"/token")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return true
		}
	})
	authURL, _ := h.m.Start(context.Background(), "notion", "alice", "")
	_, err := h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice")
	wantCallbackError(t, err, http.StatusBadGateway, "307")
	if target.tokenCalls.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// unusedListener returns an address nothing listens on.
func unusedListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
