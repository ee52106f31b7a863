package oauthflow

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// hangUp answers a request with no answer at all: the connection closes,
// as when the provider is down.
func hangUp(w http.ResponseWriter, _ request) bool {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
	return true
}

// TestUnreachableProviderRetries: a refresh that finds the provider down
// leaves the connection expired, saying so, with its tokens kept; the
// caller gets no consent prompt. Another Manager on the store (another
// instance, or the next config) tries again and, once the provider is
// back, the connection is active again without a consent.
func TestUnreachableProviderRetries(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.expire()
	h.as.set(func(a *fakeAS) { a.onToken = hangUp })
	_, err := h.token("notion", "alice")
	if err == nil || errors.Is(err, ErrConsentRequired) || !strings.Contains(err.Error(), reasonUnreachable) {
		t.Fatalf("Token = %v, want a plain error saying the provider could not be reached", err)
	}
	c := h.m.Connection(context.Background(), "notion", "alice")
	if c.State != connectors.StateExpired || c.Reason != reasonUnreachable || c.Status() != connectors.StatusNeedsAuth {
		t.Fatalf("connection = %+v", c)
	}
	if g := h.grant("notion", "alice"); g.RefreshToken == "" || len(h.as.revokeRequests()) != 0 {
		t.Fatal("the provider being down dropped or revoked the tokens")
	}

	other, err := New(Options{Store: h.st, PublicURL: publicURL, StateKey: []byte("0123456789abcdef0123456789abcdef"), Now: h.clock.Now},
		[]Config{h.as.config("notion")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	calls := h.as.tokenCalls.Load()
	if _, err := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"}); err == nil || errors.Is(err, ErrConsentRequired) {
		t.Fatalf("another instance while the provider is down: %v", err)
	}
	if h.as.tokenCalls.Load() != calls+1 {
		t.Fatalf("another instance did not try again: %d token requests", h.as.tokenCalls.Load()-calls)
	}
	h.as.set(func(a *fakeAS) { a.onToken = nil })
	h.clock.Add(refreshBackoff)
	if _, err := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"}); err != nil {
		t.Fatalf("once the provider is back: %v", err)
	}
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateActive || c.Reason != "" {
		t.Errorf("once the provider is back the connection is %+v", c)
	}
}

// TestNoRefreshTokenAgainIsMisconfigured: an expiring access token
// without a refresh token expires the connection once, asking for a
// consent; when the consent after it again brings no refresh token, the
// connection is misconfigured at the next expiry, telling the user to
// ask an admin, and an agent gets no consent link to follow in a loop.
// Once the provider issues refresh tokens, a consent mends it.
func TestNoRefreshTokenAgainIsMisconfigured(t *testing.T) {
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.noRefresh = true })
	h.connect(h.as, "notion", "alice")
	h.expire()
	var ce *ConsentError
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth || !strings.Contains(ce.Reason, "reconnect") {
		t.Fatalf("the first expiry: %v", err)
	}

	h.connect(h.as, "notion", "alice")
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatalf("the token of the second consent serves until it expires: %v", err)
	}
	h.expire()
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Status != connectors.StatusMisconfigured || ce.Reason != reasonNoRefresh {
		t.Fatalf("the second expiry: %v", err)
	}
	c := h.m.Connection(context.Background(), "notion", "alice")
	if c.State != connectors.StateMisconfigured || c.Status() != connectors.StatusMisconfigured || !strings.Contains(c.Reason, "ask an admin") {
		t.Fatalf("connection = %+v", c)
	}

	// An admin fixed the client: a person's consent brings a refresh
	// token, and the connection outlives its access token again.
	h.as.set(func(a *fakeAS) { a.noRefresh = false })
	h.connect(h.as, "notion", "alice")
	h.expire()
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if g := h.grant("notion", "alice"); g.Unrefreshable != 0 {
		t.Errorf("a refresh token left the count at %d", g.Unrefreshable)
	}
}

// TestRefusedTokenWithoutLifetime: a token that was given no lifetime
// and no refresh token, refused by the upstream, needs a consent, every
// time: it says nothing of offline access.
func TestRefusedTokenWithoutLifetime(t *testing.T) {
	h := newHarness(t, nil)
	h.as.set(func(a *fakeAS) { a.noRefresh, a.expiresIn = true, 0 })
	for range 3 {
		h.connect(h.as, "notion", "alice")
		tok, err := h.token("notion", "alice")
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header})
		var ce *ConsentError
		if !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth {
			t.Fatalf("a refused token: %v", err)
		}
	}
}
