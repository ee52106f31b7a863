package oauthflow

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// changedGeneration is a harness whose notion has the binding "before",
// changed by before, and a second Manager on its store with notion
// changed again by after, as the generation that serves once an admin's
// update is in force.
func changedGeneration(t *testing.T, before, after func(a *fakeAS, c *Config)) (*harness, *Manager) {
	t.Helper()
	var opts Options
	var cfgs []Config
	h := newHarness(t, func(h *harness, o *Options, c *[]Config) {
		(*c)[0].Binding = "before"
		if before != nil {
			before(h.as, &(*c)[0])
		}
		o.Locks = new(Locks)
		opts, cfgs = *o, slices.Clone(*c)
	})
	after(h.as, &cfgs[0])
	next, err := New(opts, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(next.Close)
	return h, next
}

// TestGrantOfAChangedConnector checks that a grant obtained before an
// admin changed what its tokens are bound to (another binding, or an
// issuer configured that they did not come from) serves no call of the
// changed connector, from memory or by a refresh, and shows as needing a
// consent, while the generation before the change still serves it. A
// grant from before grants recorded a binding is judged by its
// resource.
func TestGrantOfAChangedConnector(t *testing.T) {
	legacy := func(_ *fakeAS, c *Config) { c.Binding = "" } // a grant from before grants recorded one
	for _, tc := range []struct {
		name          string
		before, after func(a *fakeAS, c *Config)
		serves        bool
	}{
		{"same binding", nil, func(_ *fakeAS, c *Config) { c.Scopes = []string{"read", "write"} }, true},
		{"another binding", nil, func(_ *fakeAS, c *Config) { c.Binding = "after" }, false},
		{"the grants' own issuer", nil, func(a *fakeAS, c *Config) { c.Issuer = a.Issuer }, true},
		{"another issuer", nil, func(_ *fakeAS, c *Config) { c.Issuer = "https://other-as.example.test" }, false},
		{"legacy, same resource", legacy, func(_ *fakeAS, c *Config) { c.Binding = "after" }, true},
		{"legacy, resource under the grant's", legacy, func(_ *fakeAS, c *Config) {
			c.Binding, c.Resource = "after", "https://mcp.notion.test/mcp/v2"
		}, true},
		{"legacy, another resource", legacy, func(_ *fakeAS, c *Config) {
			c.Binding, c.Resource = "after", "https://mcp.elsewhere.test/mcp"
		}, false},
	} {
		for _, expired := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{true: ", expired"}[expired], func(t *testing.T) {
				h, next := changedGeneration(t, tc.before, tc.after)
				h.connect(h.as, "notion", "alice")
				if got := h.grant("notion", "alice").Binding; got != h.m.conns["notion"].cfg.Binding {
					t.Fatalf("the grant records the binding %q", got)
				}
				if expired {
					h.expire()
				}
				calls := h.as.tokenCalls.Load()
				_, err := next.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
				conn := next.Connection(context.Background(), "notion", "alice")
				if tc.serves {
					if err != nil || conn.State != connectors.StateActive {
						t.Fatalf("Token = %v, connection %+v; want the grant to serve", err, conn)
					}
					return
				}
				ce, ok := errors.AsType[*ConsentError](err)
				if !ok || !strings.Contains(ce.Reason, "an admin changed the connector") || ce.Status != connectors.StatusNeedsAuth {
					t.Fatalf("Token = %v, want a consent asked for, saying that an admin changed the connector", err)
				}
				if conn.State != connectors.StateReauthRequired || conn.Reason != reasonChanged {
					t.Errorf("the connection shows %+v", conn)
				}
				if n := h.as.tokenCalls.Load() - calls; n != 0 {
					t.Errorf("the refused grant was refreshed: %d token requests", n)
				}
				if _, err := h.token("notion", "alice"); err != nil {
					t.Errorf("the generation before the change: %v", err)
				}
			})
		}
	}
}

// TestCallbackOfAChangedConnector checks that a consent started before
// an admin changed the connector, or disabled it, completes nothing
// after: its code is never redeemed, so no token is issued, and the
// browser is told why. A disabled connector starts no consent either.
func TestCallbackOfAChangedConnector(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(a *fakeAS, c *Config)
		status int
		says   string
	}{
		{"changed", func(_ *fakeAS, c *Config) { c.Binding = "after" }, http.StatusConflict, "an admin changed the connector while consent was in progress"},
		{"disabled", func(_ *fakeAS, c *Config) { c.Disabled = true }, http.StatusForbidden, "connector notion is disabled by an admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, next := changedGeneration(t, nil, tc.change)
			authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			calls := h.as.tokenCalls.Load()
			_, err = next.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice")
			ce, ok := errors.AsType[*CallbackError](err)
			if !ok || ce.Status != tc.status || ce.Code != "access_denied" || !strings.Contains(ce.Description, tc.says) {
				t.Fatalf("Callback = %v, want %d access_denied saying %q", err, tc.status, tc.says)
			}
			if n := h.as.tokenCalls.Load() - calls; n != 0 {
				t.Errorf("the code was redeemed: %d token requests", n)
			}
			if g := h.grant("notion", "alice"); g.AccessToken != "" {
				t.Error("the refused callback stored a token")
			}
		})
	}
	_, next := changedGeneration(t, nil, func(_ *fakeAS, c *Config) { c.Disabled = true })
	if _, err := next.Start(context.Background(), "notion", "alice", ""); err == nil || err.Error() != "connector notion is disabled by an admin" {
		t.Errorf("Start of a disabled connector = %v", err)
	}
}

// TestDisconnectAll checks that DisconnectAll revokes every user's grant
// and keeps its record, disconnected with the reason for users to read,
// and the registered client, which ForgetClients then deletes.
func TestDisconnectAll(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.connect(h.as, "notion", "bob")
	ctx := context.Background()
	const reason = "an admin changed the connector: the resource changed; connect again"
	revs, err := h.m.DisconnectAll(ctx, "notion", reason)
	if err != nil || len(revs) != 2 || !revs[0].Revoked || !revs[1].Revoked {
		t.Fatalf("DisconnectAll = %+v, %v", revs, err)
	}
	if n := len(h.as.revokeRequests()); n != 4 { // a refresh and an access token each
		t.Errorf("the server saw %d revocations, want 4", n)
	}
	for _, user := range []string{"alice", "bob"} {
		if g := h.grant("notion", user); g.Connection.State != connectors.StateDisconnected || g.Connection.Reason != reason || g.AccessToken != "" {
			t.Errorf("%s's grant after DisconnectAll: %+v", user, g.Connection)
		}
		if _, err := h.token("notion", user); err == nil || !strings.Contains(err.Error(), "the resource changed") {
			t.Errorf("%s's token after DisconnectAll: %v", user, err)
		}
	}
	if keys, _ := h.st.List(ctx, prefixClients+"notion/"); len(keys) == 0 {
		t.Error("DisconnectAll deleted the registered client")
	}
	if err := h.m.ForgetClients(ctx, "notion"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := h.st.List(ctx, prefixClients+"notion/"); len(keys) != 0 {
		t.Errorf("clients left after ForgetClients: %v", keys)
	}
	if _, err := h.m.DisconnectAll(ctx, "nope", ""); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("DisconnectAll of an unknown connector: %v", err)
	}
}
