package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	// Error, not needs_auth: a consent cannot help while a retry can.
	if c.State != connectors.StateExpired || c.Reason != reasonUnreachable || !c.Retrying || c.Status() != connectors.StatusError {
		t.Fatalf("connection = %+v, status %s", c, c.Status())
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

// refuseRefresh answers every refresh with status and body, and lets
// other token requests (a consent's code) through.
func refuseRefresh(status int, body string) func(http.ResponseWriter, request) bool {
	return func(w http.ResponseWriter, r request) bool {
		if r.form.Get("grant_type") != "refresh_token" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
		return true
	}
}

// staticClient gives notion a static client of the harness's server.
func staticClient(h *harness, _ *Options, cfgs *[]Config) {
	h.as.clients["static-client"] = "STATIC-SECRET-CANARY"
	(*cfgs)[0].ClientID, (*cfgs)[0].ClientSecret = "static-client", "STATIC-SECRET-CANARY"
}

// refusedRefresh connects alice, expires her token, has the server
// answer the refresh with status and body, and returns the ConsentError
// of the next call, which must name no secret nor the provider's text.
func (h *harness) refusedRefresh(status int, body string) *ConsentError {
	h.t.Helper()
	h.connect(h.as, "notion", "alice")
	h.expire()
	h.as.set(func(a *fakeAS) { a.onToken = refuseRefresh(status, body) })
	_, err := h.token("notion", "alice")
	ce, ok := errors.AsType[*ConsentError](err)
	if !ok {
		h.t.Fatalf("Token = %v, want a ConsentError", err)
	}
	assertNoCanary(h.t, "the error", err.Error())
	if strings.Contains(err.Error(), "DESCRIPTION") {
		h.t.Errorf("the error echoes the provider's description: %v", err)
	}
	return ce
}

// TestRefreshClientRefused: a refresh refused because the provider no
// longer accepts mcpgate's client ends the connection, its tokens
// dropped. A registered client it no longer knows (DCR, invalid_client)
// is registered anew at the next consent, which the user is asked for;
// any other (a static client, or one not allowed the refresh grant) is
// the admin's to fix: the connection is misconfigured, saying to ask an
// admin, and no consent is asked for. Either way no call asks the
// server again until someone acts.
func TestRefreshClientRefused(t *testing.T) {
	const admin = "the provider no longer accepts mcpgate's client (%s): ask an admin to check the connector's client at the provider"
	tests := []struct {
		name   string
		tweak  func(*harness, *Options, *[]Config)
		code   string
		kind   string
		state  connectors.State
		status connectors.Status
		reason string
	}{
		{"registered client unknown", nil, "invalid_client", RegistrationDCR,
			connectors.StateReauthRequired, connectors.StatusNeedsAuth, reasonReregister},
		{"registered client not allowed to refresh", nil, "unauthorized_client", RegistrationDCR,
			connectors.StateMisconfigured, connectors.StatusMisconfigured, fmt.Sprintf(admin, "unauthorized_client")},
		{"static client refused", staticClient, "invalid_client", RegistrationStatic,
			connectors.StateMisconfigured, connectors.StatusMisconfigured, fmt.Sprintf(admin, "invalid_client")},
		{"static client not allowed to refresh", staticClient, "unauthorized_client", RegistrationStatic,
			connectors.StateMisconfigured, connectors.StatusMisconfigured, fmt.Sprintf(admin, "unauthorized_client")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.tweak)
			ce := h.refusedRefresh(http.StatusUnauthorized, `{"error":"`+tt.code+`","error_description":"DESCRIPTION DESC-CANARY-1"}`)
			if ce.Status != tt.status || ce.Reason != tt.reason {
				t.Errorf("ConsentError = %+v, want %s: %q", ce, tt.status, tt.reason)
			}
			c := h.m.Connection(context.Background(), "notion", "alice")
			if c.State != tt.state || c.Reason != tt.reason || c.Status() != tt.status {
				t.Errorf("connection = %+v, want %s: %q", c, tt.state, tt.reason)
			}
			if g := h.grant("notion", "alice"); g.ClientKind != tt.kind || g.RefreshToken != "" || g.AccessToken != "" {
				t.Errorf("grant of a %s client after the refusal: %v, want its tokens dropped", g.ClientKind, g)
			}
			calls := h.as.tokenCalls.Load()
			if _, err := h.token("notion", "alice"); !errors.Is(err, ErrConsentRequired) || h.as.tokenCalls.Load() != calls {
				t.Errorf("the next call: %v, after %d token requests; want the same refusal and none", err, h.as.tokenCalls.Load()-calls)
			}
		})
	}
}

// TestReconnectRegistersAgain: after the provider forgot mcpgate's
// registered client, the consent the user is asked for registers a new
// one, and the connection works again.
func TestReconnectRegistersAgain(t *testing.T) {
	h := newHarness(t, nil)
	h.refusedRefresh(http.StatusUnauthorized, `{"error":"invalid_client"}`)
	before := len(h.as.registers)
	h.as.set(func(a *fakeAS) { a.onToken = nil })
	h.connect(h.as, "notion", "alice")
	if _, err := h.token("notion", "alice"); err != nil || len(h.as.registers) != before+1 {
		t.Fatalf("after a reconnect: %v, %d registrations, want one more", err, len(h.as.registers)-before)
	}
}

// TestRefreshRefusedOrMalformed: a refresh refused with another error
// (RFC 6749 §5.2), or answered with what is not a token response, ends
// the connection in error rather than leave it active while every call
// fails: its reason names the error code, or the HTTP status when there
// is none, never the provider's description or body, and tells the user
// to ask an admin. The tokens are kept, for a disconnect to revoke; no
// call asks the server again, and a consent mends it.
func TestRefreshRefusedOrMalformed(t *testing.T) {
	refused := "the provider refused to refresh the token (%s): ask an admin"
	tests := []struct {
		name   string
		status int
		body   string
		reason string
	}{
		{"invalid_request", 400, `{"error":"invalid_request","error_description":"DESCRIPTION DESC-CANARY-1"}`, fmt.Sprintf(refused, "invalid_request")},
		{"invalid_scope", 400, `{"error":"invalid_scope","error_description":"DESCRIPTION"}`, fmt.Sprintf(refused, "invalid_scope")},
		{"unsupported_grant_type", 400, `{"error":"unsupported_grant_type"}`, fmt.Sprintf(refused, "unsupported_grant_type")},
		{"no error code", 403, `<html>DESCRIPTION BODY-CANARY-1</html>`, fmt.Sprintf(refused, "HTTP 403")},
		{"a code that is no code", 400, `{"error":"bad \"code\" DESC-CANARY-1"}`, fmt.Sprintf(refused, "HTTP 400")},
		{"no access token", 200, `{"token_type":"Bearer","refresh_token":"RT-CANARY-x"}`, reasonMalformed},
		{"not a token response", 200, `<html>DESCRIPTION BODY-CANARY-1</html>`, reasonMalformed},
		{"not bearer", 200, `{"access_token":"AT-CANARY-x","token_type":"mac"}`, reasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ce := h.refusedRefresh(tt.status, tt.body)
			if ce.Status != connectors.StatusMisconfigured || ce.Reason != tt.reason {
				t.Errorf("ConsentError = %+v, want misconfigured: %q", ce, tt.reason)
			}
			c := h.m.Connection(context.Background(), "notion", "alice")
			if c.State != connectors.StateError || c.Reason != tt.reason || c.Retrying {
				t.Errorf("connection = %+v, want error: %q", c, tt.reason)
			}
			if g := h.grant("notion", "alice"); g.RefreshToken == "" {
				t.Error("the refresh token was dropped: a disconnect cannot revoke it")
			}
			calls := h.as.tokenCalls.Load()
			if _, err := h.token("notion", "alice"); !errors.Is(err, ErrConsentRequired) || h.as.tokenCalls.Load() != calls {
				t.Errorf("the next call: %v, after %d token requests; want the same refusal and none", err, h.as.tokenCalls.Load()-calls)
			}
			h.connect(h.as, "notion", "alice")
			if _, err := h.token("notion", "alice"); err != nil {
				t.Errorf("after a consent: %v", err)
			}
		})
	}
}
