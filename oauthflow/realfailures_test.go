package oauthflow

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// TestRealRefreshRevoked: against the real authorization server, the
// account comes from its ID token; once the refresh token is revoked
// there (RFC 7009, as a user does in the provider's settings) and the
// short-lived access token has expired, the next call finds the
// connection reauth_required, saying that the provider refused the
// refresh token and to reconnect.
func TestRealRefreshRevoked(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: 2 * time.Second})
	up.SetGuard(as.Protect)
	h := realHarness(t, up.URL, []string{"openid", "mcp"})
	first := connectReal(t, h)
	d := h.details("notion", "alice")
	if d.Account == nil || d.Account.Subject != "alice" || d.Account.Source != AccountFromIDToken {
		t.Errorf("account = %+v, want alice from the ID token", d.Account)
	}
	if d.Recorded == nil || d.Recorded.Issuer != as.Issuer || d.Client.Kind != RegistrationDCR || !d.RefreshToken {
		t.Errorf("details = %+v", d)
	}

	ctx := context.Background()
	g := h.grant("notion", "alice")
	reg, _, err := h.m.readClient(ctx, clientKey("notion", g.Issuer))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.conns["notion"].revokeOne(ctx, reg.client(), g.RevocationEndpoint, g.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("revoking the refresh token at the provider: %v", err)
	}
	wait.Until(t, 10*time.Second, "the access token to expire at the provider", func() bool {
		active, _, err := as.Active(ctx, first)
		return err == nil && !active
	})
	h.expire()

	_, err = h.token("notion", "alice")
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth || ce.Reason != reasonRefused {
		t.Fatalf("Token = %v, want consent, the refresh token refused", err)
	}
	if c := h.m.Connection(ctx, "notion", "alice"); c.State != connectors.StateReauthRequired || c.Reason != reasonRefused {
		t.Errorf("connection = %+v", c)
	}
}

// TestRealProviderDown: when the real authorization server cannot be
// reached, a refresh that is due leaves the connection expired, saying
// that mcpgate retries, with its tokens kept; once the server is back at
// its address the next call refreshes, with no consent.
func TestRealProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, Issuer: "http://" + addr})
	up.SetGuard(as.Protect)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	front := serveOn(t, ln, proxyTo(t, as.URL, tr))
	h := realHarness(t, up.URL, nil)
	connectReal(t, h)

	front.Close() // the provider goes down
	h.expire()
	_, err = h.token("notion", "alice")
	if err == nil || errors.Is(err, ErrConsentRequired) || !strings.Contains(err.Error(), reasonUnreachable) {
		t.Fatalf("Token = %v, want a plain error saying the provider could not be reached", err)
	}
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateExpired || c.Reason != reasonUnreachable ||
		c.Status() != connectors.StatusError {
		t.Fatalf("connection = %+v, status %s; want an error that mcpgate retries, not a consent", c, c.Status())
	}
	if g := h.grant("notion", "alice"); g.RefreshToken == "" {
		t.Fatal("the refresh token was dropped")
	}

	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the provider's address is taken: %v", err)
	}
	serveOn(t, again, proxyTo(t, as.URL, tr))
	h.clock.Add(refreshBackoff)
	checkAudience(t, as, up.URL, accessToken(t, h), up.URL)
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateActive || c.Retrying {
		t.Errorf("once the provider is back the connection is %+v", c)
	}
}

// serveOn serves h on ln until the test ends, or until the server it
// returns is closed.
func serveOn(t *testing.T, ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv
}
