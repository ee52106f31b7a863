package oauthflow

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

func TestDisconnect(t *testing.T) {
	// Disconnect clears local state at once, whatever the revocation
	// endpoint answers (RFC 7009), and says what became of the tokens.
	tests := []struct {
		name          string
		revoke        func(w http.ResponseWriter, r request) bool
		noEndpoint    bool
		unreachable   bool
		want          Revocation
		detail        string
		wantRevokeReq int
	}{
		{name: "a 200", want: Revocation{Attempted: true, Revoked: true}, detail: "refresh token revoked; access token revoked", wantRevokeReq: 2},
		{name: "b unknown token", revoke: func(w http.ResponseWriter, _ request) bool { return true }, // 200, nothing known
			want: Revocation{Attempted: true, Revoked: true}, detail: "revoked", wantRevokeReq: 2},
		{name: "c 503", revoke: func(w http.ResponseWriter, _ request) bool {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("RT-CANARY echoed"))
			return true
		}, want: Revocation{Attempted: true}, detail: "HTTP 503", wantRevokeReq: 2},
		{name: "d no endpoint", noEndpoint: true, want: Revocation{}, detail: "no revocation endpoint"},
		{name: "e unreachable", unreachable: true, want: Revocation{Attempted: true}, detail: "could not reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.as.set(func(a *fakeAS) {
				a.onRevoke = tt.revoke
				switch {
				case tt.noEndpoint:
					a.meta.RevocationEndpoint = ""
				case tt.unreachable:
					a.meta.RevocationEndpoint = "http://" + unusedListener(t) + "/revoke"
				}
			})
			ctx := context.Background()
			h.connect(h.as, "notion", "alice")
			g := h.grant("notion", "alice")
			pending, _ := h.m.Start(ctx, "notion", "alice", "")
			cb := h.as.authorize(t, pending, "alice")
			if _, err := h.token("notion", "alice"); err != nil {
				t.Fatal(err)
			}

			rev, err := h.m.Disconnect(ctx, "notion", "alice", "user asked\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if rev.Attempted != tt.want.Attempted || rev.Revoked != tt.want.Revoked || !strings.Contains(rev.Detail, tt.detail) {
				t.Errorf("revocation = %+v, want %+v with %q", rev, tt.want, tt.detail)
			}
			assertNoCanary(t, "detail", rev.Detail)
			// Local state first, whatever the server said.
			var ce *ConsentError
			if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Reason != "user asked" {
				t.Errorf("Token after disconnect = %v", err)
			}
			after := h.grant("notion", "alice")
			if after.AccessToken != "" || after.RefreshToken != "" || after.Connection.State != connectors.StateDisconnected {
				t.Errorf("stored grant = %v", after)
			}
			if c := h.m.Connection(ctx, "notion", "alice"); c.State != connectors.StateDisconnected || c.Reason != "user asked" {
				t.Errorf("connection = %+v", c)
			}
			if _, err := h.m.Callback(ctx, cb, "alice"); err == nil {
				t.Error("a consent pending at the disconnect completed")
			}
			h.as.mu.Lock()
			defer h.as.mu.Unlock()
			if len(h.as.revokes) != tt.wantRevokeReq {
				t.Fatalf("%d revocation requests, want %d", len(h.as.revokes), tt.wantRevokeReq)
			}
			if tt.wantRevokeReq == 2 {
				r0, r1 := h.as.revokes[0], h.as.revokes[1]
				if r0.form.Get("token") != g.RefreshToken || r0.form.Get("token_type_hint") != "refresh_token" ||
					r1.form.Get("token") != g.AccessToken || r1.form.Get("token_type_hint") != "access_token" || !r0.hasBasic {
					t.Errorf("revocation requests: %v %v", r0.form, r1.form)
				}
			}
			assertNoCanary(t, "logs", h.logText())
		})
	}
}

func TestGrantAfterDisconnect(t *testing.T) {
	// A callback whose flow was taken before a disconnect finishes after
	// it: the grant is refused and its fresh tokens revoked.
	h := newHarness(t, nil)
	ctx := context.Background()
	authURL, _ := h.m.Start(ctx, "notion", "alice", "")
	c := h.m.conns["notion"]
	h.m.withGrant(ctx, c, "alice", func(g *grantRecord) (bool, error) {
		return true, g.apply(connectors.EventDisconnect, "gone", h.clock.Now())
	})
	_, err := h.m.Callback(ctx, h.as.authorize(t, authURL, "alice"), "alice")
	wantCallbackError(t, err, http.StatusConflict, "disconnected")
	if g := h.grant("notion", "alice"); g.AccessToken != "" || g.Connection.State != connectors.StateDisconnected {
		t.Errorf("grant = %v", g)
	}
	if len(h.as.revokes) != 2 {
		t.Errorf("%d revocations of the orphan tokens, want 2", len(h.as.revokes))
	}
}

func TestDisconnectWithoutGrant(t *testing.T) {
	h := newHarness(t, nil)
	rev, err := h.m.Disconnect(context.Background(), "notion", "alice", "")
	if err != nil || rev.Attempted || rev.Detail == "" {
		t.Fatalf("Disconnect = %+v %v", rev, err)
	}
	if c := h.m.Connection(context.Background(), "notion", "alice"); c.State != connectors.StateDisconnected || c.Reason != "disconnected" {
		t.Errorf("connection = %+v", c)
	}
	if _, err := h.m.Disconnect(context.Background(), "nope", "alice", ""); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("unknown connector: %v", err)
	}
}

func TestDisconnectFailsClosed(t *testing.T) {
	// Reads racing a disconnect never republish the tokens it removed.
	h := newHarness(t, nil)
	c := h.m.conns["notion"]
	for i := range 100 {
		h.connect(h.as, "notion", "alice")
		c.mu.Lock()
		delete(c.grants, "alice") // make the readers go to the store
		c.mu.Unlock()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						h.token("notion", "alice")
						h.m.Connection(context.Background(), "notion", "alice")
					}
				}
			})
		}
		if _, err := h.m.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if tok, err := h.token("notion", "alice"); err == nil {
				t.Fatalf("iteration %d: a token after the disconnect: %v", i, tok)
			}
		}
		close(stop)
		wg.Wait()
	}
}
