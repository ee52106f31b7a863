package oauthflow

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// expire moves the clock past the access token's lifetime.
func (h *harness) expire() { h.clock.Add(time.Hour) }

// storm asks for alice's expired notion token n times at once, spread
// over managers in turn, while the AS holds each token request a moment
// so that the refresh stays in flight. Every answer must be the same
// fresh token; it returns that token and how many token requests the AS
// saw.
func (h *harness) storm(n int, managers ...*Manager) (Token, int64) {
	h.t.Helper()
	h.expire()
	h.as.set(func(a *fakeAS) {
		a.onToken = func(http.ResponseWriter, request) bool {
			time.Sleep(20 * time.Millisecond)
			return false
		}
	})
	calls := h.as.tokenCalls.Load()
	tokens := make([]Token, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		m := managers[i%len(managers)]
		wg.Go(func() {
			tokens[i], errs[i] = m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || tokens[i] != tokens[0] {
			h.t.Fatalf("call %d: %v %v", i, tokens[i], errs[i])
		}
	}
	return tokens[0], h.as.tokenCalls.Load() - calls
}

func TestRefreshStorm(t *testing.T) {
	// 100 concurrent calls on an expired token: exactly one refresh.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	first, _ := h.token("notion", "alice")
	tok, requests := h.storm(100, h.m)
	if requests != 1 {
		t.Fatalf("%d token requests for 100 concurrent calls, want 1", requests)
	}
	if tok.Header == first.Header || tok.Key != first.Key {
		t.Errorf("the refresh gave %v after %v: want a new token under the same key", tok, first)
	}
}

func TestRefreshPersistsRotation(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	oldRT := h.grant("notion", "alice").RefreshToken
	h.expire()
	// The moment the refreshed token is handed out, the store already
	// holds the rotated refresh token.
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	g := h.grant("notion", "alice")
	if g.RefreshToken == oldRT || g.RefreshToken == "" || "Bearer "+g.AccessToken != tok.Header {
		t.Fatalf("store after refresh: rt changed=%v at matches=%v", g.RefreshToken != oldRT, "Bearer "+g.AccessToken == tok.Header)
	}
	h.as.mu.Lock()
	_, live := h.as.refresh[g.RefreshToken]
	h.as.mu.Unlock()
	if !live {
		t.Fatal("the stored refresh token is not the server's live one")
	}
	// The RFC 8707 resource on the refresh too, and no scope.
	last := h.as.tokenRequests()[1].form
	if last.Get("grant_type") != "refresh_token" || last.Get("resource") != "https://mcp.notion.test/mcp" || last.Has("scope") {
		t.Errorf("refresh form = %v", last)
	}

	// A response without refresh_token keeps the old one.
	h.as.set(func(a *fakeAS) { a.noRotate = true })
	h.expire()
	before := h.grant("notion", "alice").RefreshToken
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	if h.grant("notion", "alice").RefreshToken != before {
		t.Error("the refresh token was lost when the response had none")
	}
}

func TestRefreshStoreFailure(t *testing.T) {
	// A refreshed token is not handed out before it is stored; a failed
	// write keeps the rotated refresh token in memory and retries.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.expire()
	h.st.failPut.Store(true)
	if _, err := h.token("notion", "alice"); !errors.Is(err, errPut) {
		t.Fatalf("Token with a failing store = %v", err)
	}
	if _, err := h.token("notion", "alice"); !errors.Is(err, errPut) {
		t.Fatalf("second Token with a failing store = %v", err)
	}
	calls := h.as.tokenCalls.Load()
	h.st.failPut.Store(false)
	h.clock.Add(refreshBackoff)
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	g := h.grant("notion", "alice")
	if "Bearer "+g.AccessToken != tok.Header || h.as.tokenCalls.Load() != calls {
		t.Fatal("the refreshed token was not stored from memory")
	}
	h.as.mu.Lock()
	_, live := h.as.refresh[g.RefreshToken]
	h.as.mu.Unlock()
	if !live {
		t.Fatal("the rotated refresh token was lost")
	}
}

func TestInvalidGrant(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.as.set(func(a *fakeAS) { a.refresh = map[string]codeFor{} }) // the server forgot every refresh token
	h.expire()
	_, err := h.token("notion", "alice")
	var ce *ConsentError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConsentRequired) || ce.Status != connectors.StatusNeedsAuth || !strings.Contains(ce.Reason, "invalid_grant") {
		t.Fatalf("Token = %v", err)
	}
	g := h.grant("notion", "alice")
	if g.Connection.State != connectors.StateReauthRequired || g.AccessToken != "" || g.RefreshToken != "" {
		t.Fatalf("grant = %v", g)
	}
	calls := h.as.tokenCalls.Load()
	for range 10 {
		if _, err := h.token("notion", "alice"); !errors.As(err, &ce) {
			t.Fatal(err)
		}
		h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: "Bearer gone"})
	}
	if h.as.tokenCalls.Load() != calls {
		t.Fatal("calls to the server after invalid_grant")
	}
	// A new consent recovers.
	h.connect(h.as, "notion", "alice")
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestExpiredWithoutRefreshToken(t *testing.T) {
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.noRefresh = true })
	h.connect(h.as, "notion", "alice")
	h.expire()
	var ce *ConsentError
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth {
		t.Fatalf("Token = %v", err)
	}
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateExpired || c.Reason == "" {
		t.Errorf("connection = %+v", c)
	}
}

func TestNoExpiryRefreshesOnRefusal(t *testing.T) {
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.expiresIn = 0 })
	h.connect(h.as, "notion", "alice")
	first, _ := h.token("notion", "alice")
	h.clock.Add(365 * 24 * time.Hour)
	if tok, _ := h.token("notion", "alice"); tok != first {
		t.Fatal("a token without expiry was refreshed unasked")
	}
	refused := TokenRequest{Connector: "notion", User: "alice", Refused: first.Header, Challenge: `Bearer error="invalid_token"`}
	second, err := h.m.Token(context.Background(), refused)
	if err != nil || second.Header == first.Header {
		t.Fatalf("refused: %v %v", second, err)
	}
	// Another refusal of the first token, by a call that raced the
	// refresh, gets the second one: no refresh.
	calls := h.as.tokenCalls.Load()
	if third, err := h.m.Token(context.Background(), refused); err != nil || third != second || h.as.tokenCalls.Load() != calls {
		t.Fatalf("a refusal of the replaced token refreshed again: %v", err)
	}
	// A refusal of the new token refreshes at once, however fresh it is.
	refused.Refused = second.Header
	if third, err := h.m.Token(context.Background(), refused); err != nil || third == second || h.as.tokenCalls.Load() != calls+1 {
		t.Fatalf("a refusal of the current token did not refresh: %v", err)
	}
}

func TestRefreshServerFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.expire()
	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, _ request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"maintenance by ops-oncall@provider.example"}`))
			return true
		}
	})
	tok, err := h.token("notion", "alice")
	var ce *ConsentError
	if err == nil || errors.As(err, &ce) || tok.Header != "" || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), reasonUnreachable) {
		t.Fatalf("Token = %v %v, want a plain error and no token", tok, err)
	}
	// The provider's own words reach no agent and no page: only the log.
	if strings.Contains(err.Error(), "ops-oncall") {
		t.Fatalf("the error echoes the provider's description: %v", err)
	}
	// The connection says why and retries: expired, with its tokens kept,
	// none revoked; it needs no consent.
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateExpired || c.Reason != reasonUnreachable {
		t.Errorf("after a server failure the connection is %+v, want expired because the provider could not be reached", c)
	}
	if g := h.grant("notion", "alice"); g.RefreshToken == "" || g.AccessToken == "" || len(h.as.revokeRequests()) != 0 {
		t.Errorf("a server failure dropped or revoked the tokens: %v, %d revocations", g, len(h.as.revokeRequests()))
	}
	// A burst right after the failure gets the same error, without
	// requests.
	calls := h.as.tokenCalls.Load()
	for range 50 {
		if _, err := h.token("notion", "alice"); err == nil {
			t.Fatal("no error during the backoff")
		}
	}
	if h.as.tokenCalls.Load() != calls {
		t.Fatal("requests during the backoff")
	}
	h.as.set(func(a *fakeAS) { a.onToken = nil })
	h.clock.Add(refreshBackoff)
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateActive || c.Reason != "" {
		t.Errorf("after recovery the connection is %+v, want active", c)
	}
}

func TestRefreshOutlivesCaller(t *testing.T) {
	// A caller that gives up does not cancel the refresh it began: the
	// rotated refresh token still reaches the store.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.expire()
	release := make(chan struct{})
	h.as.set(func(a *fakeAS) {
		a.onToken = func(http.ResponseWriter, request) bool { <-release; return false }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := h.m.Token(ctx, TokenRequest{Connector: "notion", User: "alice"})
		done <- err
	}()
	for h.as.tokenCalls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Token = %v", err)
	}
	oldRT := h.grant("notion", "alice").RefreshToken
	close(release)
	for h.grant("notion", "alice").RefreshToken == oldRT {
		time.Sleep(time.Millisecond)
	}
	if _, err := h.token("notion", "alice"); err != nil || h.as.tokenCalls.Load() != 2 {
		t.Fatalf("after: %v, %d calls", err, h.as.tokenCalls.Load())
	}
}

func TestStepUp(t *testing.T) {
	// Step-up: granted less than asked, then insufficient_scope; the stored
	// scope is what was granted.
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.scopes = []string{"read", "write"}; a.grantScope = "read" })
	h.connect(h.as, "notion", "alice")
	if g := h.grant("notion", "alice"); strings.Join(g.Scopes, " ") != "read" {
		t.Fatalf("stored scopes = %v, want the granted ones", g.Scopes)
	}
	calls := h.as.tokenCalls.Load()
	tok, _ := h.token("notion", "alice")
	refused := TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header,
		Challenge: `Bearer realm="x", error="insufficient_scope", scope="write admin", resource_metadata="https://mcp.notion.test/.well-known/oauth-protected-resource"`}
	_, err := h.m.Token(context.Background(), refused)
	var ce *ConsentError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "the upstream needs more scope: write admin") {
		t.Fatalf("Token = %v", err)
	}
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateReauthRequired {
		t.Errorf("connection = %+v", c)
	}
	for range 5 { // no loop: nothing reaches the server
		h.m.Token(context.Background(), refused)
		h.token("notion", "alice")
	}
	if h.as.tokenCalls.Load() != calls {
		t.Fatal("step-up called the token endpoint")
	}
	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	if got := u.Query().Get("scope"); got != "read write admin" {
		t.Fatalf("step-up consent asks for %q, want the union", got)
	}
	if _, err := h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice"); err != nil {
		t.Fatal(err)
	}
	// Still not granted: the reason says the consent asked for it.
	_, err = h.m.Token(context.Background(), refused)
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "asked for it") {
		t.Fatalf("second step-up: %v", err)
	}
}

func TestStepUpRetryLimit(t *testing.T) {
	// An upstream that refuses, with insufficient_scope, the very scope
	// every consent asked for and was granted: three consents at most,
	// then the connection breaks rather than sending agents to consent in
	// a loop. A person may start once more, and that resets the count.
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.scopes = []string{"admin"} })
	ctx := context.Background()
	refuse := func() error {
		tok, err := h.token("notion", "alice")
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		_, err = h.m.Token(ctx, TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header,
			Challenge: `Bearer error="insufficient_scope", scope="admin"`})
		return err
	}
	var ce *ConsentError
	for consent := 1; consent <= 3; consent++ {
		h.connect(h.as, "notion", "alice")
		err := refuse()
		want := connectors.StatusNeedsAuth
		if consent == 3 {
			want = connectors.StatusMisconfigured
		}
		if !errors.As(err, &ce) || ce.Status != want {
			t.Fatalf("refusal after consent %d: %v, want status %s", consent, err, want)
		}
	}
	if !strings.Contains(ce.Reason, "refused 3 consents in a row") {
		t.Errorf("reason = %q", ce.Reason)
	}
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Status != connectors.StatusMisconfigured {
		t.Fatalf("after the limit: %v", err)
	}
	h.connect(h.as, "notion", "alice")
	if err := refuse(); !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth ||
		!strings.Contains(ce.Reason, "asked for it and it was granted") {
		t.Fatalf("after a person tried again: %v", err)
	}
}

func TestStepUpProgressIsNoRepeat(t *testing.T) {
	// Each refusal that wants a scope not asked for before is progress,
	// not a repeat: the count starts again.
	h := newHarness(t, nil)
	ctx := context.Background()
	for i, want := range []string{"a", "b", "c", "d", "e"} {
		h.connect(h.as, "notion", "alice")
		tok, _ := h.token("notion", "alice")
		_, err := h.m.Token(ctx, TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header,
			Challenge: `Bearer error="insufficient_scope", scope="` + want + `"`})
		var ce *ConsentError
		if !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth {
			t.Fatalf("refusal %d: %v", i, err)
		}
	}
	if g := h.grant("notion", "alice"); strings.Join(g.StepUp, " ") != "read a b c d e" || g.StepUpRepeats != 0 {
		t.Fatalf("step-up %v, repeats %d", g.StepUp, g.StepUpRepeats)
	}
}

// challengeScopes makes the harness's discovery take the scopes of the
// challenge it is given, as discovery.Discover does.
func challengeScopes(h *harness, _ *Options, cfgs *[]Config) {
	(*cfgs)[0].Discover = func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
		res, err := h.as.discover(ctx, resource, ch)
		if err == nil && ch != nil && len(ch.Scope) > 0 {
			res.Scopes = ch.Scope
		}
		return res, err
	}
}

func TestStepUpStaysWithTheGrant(t *testing.T) {
	// A 403 insufficient_scope widens the next consent of that grant
	// only: other users' consents ask for what discovery chose (the 401
	// challenge's scope), not for what one call of alice's wanted.
	h := newHarness(t, challengeScopes)
	h.connect(h.as, "notion", "alice")
	tok, _ := h.token("notion", "alice")
	h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header,
		Challenge: `Bearer error="insufficient_scope", scope="write"`})
	scopeOf := func(user string) string {
		authURL, err := h.m.Start(context.Background(), "notion", user, "")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(authURL)
		return u.Query().Get("scope")
	}
	if got := scopeOf("alice"); got != "read write" {
		t.Errorf("alice's step-up consent asks for %q, want the union", got)
	}
	if got := scopeOf("bob"); got != "read" {
		t.Errorf("bob's consent asks for %q, want what discovery chose", got)
	}
}

func TestChallengeScopeOutlivesRefusals(t *testing.T) {
	// The scope of the first 401 challenge stays what consent asks for
	// when a later 401, of a refused token, names no scope.
	h := newHarness(t, challengeScopes)
	h.connect(h.as, "notion", "alice")
	for _, challenge := range []string{`Bearer scope="basic"`, `Bearer error="invalid_token"`} {
		tok, _ := h.token("notion", "alice")
		if _, err := h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header, Challenge: challenge}); err != nil {
			t.Fatalf("refusal with %s: %v", challenge, err)
		}
	}
	authURL, err := h.m.Start(context.Background(), "notion", "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(authURL); u.Query().Get("scope") != "basic" {
		t.Fatalf("consent asks for %q, want the first challenge's", u.Query().Get("scope"))
	}
}

func TestShortLivedToken(t *testing.T) {
	// A token issued for 4 s is used for 2 s, not refreshed on every call.
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.expiresIn = 4 })
	h.connect(h.as, "notion", "alice")
	first, _ := h.token("notion", "alice")
	h.clock.Add(1900 * time.Millisecond)
	if tok, _ := h.token("notion", "alice"); tok != first || h.as.tokenCalls.Load() != 1 {
		t.Fatal("refreshed a token in the first half of its life")
	}
	h.clock.Add(200 * time.Millisecond)
	if tok, _ := h.token("notion", "alice"); tok == first || h.as.tokenCalls.Load() != 2 {
		t.Fatal("did not refresh a token in the second half of its life")
	}
}

func TestRefreshAcrossManagers(t *testing.T) {
	// Two Managers on one store, as the old and new config generations
	// during a reload, both asked for an expired token at once. With
	// shared Locks only one refreshes; the other reads the rotated grant
	// from the store. (A server that rotates refresh tokens would take a
	// second refresh with the old one for a replay.)
	h, other := twoGenerations(t)
	h.connect(h.as, "notion", "alice")
	if _, n := h.storm(20, h.m, other); n != 1 {
		t.Fatalf("two Managers made %d token requests, want 1", n)
	}
}
