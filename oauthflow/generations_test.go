package oauthflow

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// twoGenerations is a harness and a second Manager on its store and its
// Locks, as the old and the new config generation during a reload.
func twoGenerations(t *testing.T) (*harness, *Manager) {
	t.Helper()
	var opts Options
	var cfgs []Config
	h := newHarness(t, func(_ *harness, o *Options, c *[]Config) {
		o.Locks = new(Locks)
		opts, cfgs = *o, *c
	})
	other, err := New(opts, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	return h, other
}

// servedFromMemory has m hand out alice's token, and checks that it came
// from memory: no store read, no token request.
func servedFromMemory(t *testing.T, h *harness, m *Manager, want Token) {
	t.Helper()
	gets, calls := h.st.gets.Load(), h.as.tokenCalls.Load()
	tok, err := m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
	if err != nil || tok != want {
		t.Fatalf("Token = %v, %v; want %v", tok, err, want)
	}
	if h.st.gets.Load() != gets || h.as.tokenCalls.Load() != calls {
		t.Fatal("the token was not served from memory")
	}
}

func TestDisconnectReachesEveryGeneration(t *testing.T) {
	// A change made through one Manager stops another Manager on the same
	// store from handing out its cached token at once: no waiting for the
	// token to expire or for the upstream to refuse it.
	tests := []struct {
		name   string
		change func(t *testing.T, h *harness)
	}{
		{"disconnect", func(t *testing.T, h *harness) {
			if _, err := h.m.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
				t.Fatal(err)
			}
		}},
		{"remove", func(t *testing.T, h *harness) {
			if _, err := h.m.Remove(context.Background(), "notion", "the connector was removed"); err != nil {
				t.Fatal(err)
			}
		}},
		{"reauth after insufficient_scope", func(t *testing.T, h *harness) {
			tok, _ := h.token("notion", "alice")
			_, err := h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header,
				Challenge: `Bearer error="insufficient_scope", scope="write"`})
			var ce *ConsentError
			if !errors.As(err, &ce) {
				t.Fatalf("step-up: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, other := twoGenerations(t)
			h.connect(h.as, "notion", "alice")
			tok, err := h.token("notion", "alice")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"}); err != nil || got != tok {
				t.Fatalf("the other generation's token = %v, %v", got, err)
			}
			servedFromMemory(t, h, other, tok)

			calls := h.as.tokenCalls.Load()
			tt.change(t, h)
			_, err = other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
			var ce *ConsentError
			if !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth {
				t.Fatalf("the other generation after the change: %v", err)
			}
			if n := h.as.tokenCalls.Load() - calls; n != 0 {
				t.Errorf("%d token requests after the change, want 0", n)
			}
		})
	}
}

func TestReconnectReachesEveryGeneration(t *testing.T) {
	// After a disconnect and a new consent through one generation, the
	// other hands out the new token, not the one it had cached.
	h, other := twoGenerations(t)
	h.connect(h.as, "notion", "alice")
	old, _ := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
	if _, err := h.m.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
		t.Fatal(err)
	}
	h.connect(h.as, "notion", "alice")
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"}); err != nil || got != tok || got == old {
		t.Fatalf("the other generation's token = %v, %v; want the new %v", got, err, tok)
	}
	servedFromMemory(t, h, other, tok)
}

func TestLocksChanged(t *testing.T) {
	// A grant changed outside the Managers (another instance's disconnect,
	// written straight to the store) is served from memory until
	// Locks.Changed announces it; from then on it is refused.
	var locks *Locks
	h := newHarness(t, func(_ *harness, o *Options, _ *[]Config) {
		o.Locks = new(Locks)
		locks = o.Locks
	})
	h.connect(h.as, "notion", "alice")
	tok, _ := h.token("notion", "alice")
	g := h.grant("notion", "alice")
	g.dropTokens()
	if err := g.apply(connectors.EventDisconnect, "disconnected elsewhere", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	key := grantKey("notion", "alice")
	if err := putJSON(context.Background(), h.st, key, (*grantWire)(&g), 0); err != nil {
		t.Fatal(err)
	}
	servedFromMemory(t, h, h.m, tok)
	locks.Changed(key)
	_, err := h.token("notion", "alice")
	var ce *ConsentError
	if !errors.As(err, &ce) || ce.Reason != "disconnected elsewhere" {
		t.Fatalf("after Changed: %v", err)
	}
	// An announcement for a record no one cached costs nothing and
	// changes nothing.
	locks.Changed(grantKey("notion", "nobody"))
	h.clock.Add(time.Second)
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) {
		t.Fatalf("later: %v", err)
	}
}

func TestDisconnectDuringAnotherGenerationsRead(t *testing.T) {
	// The other generation reads the grant from the store just before a
	// disconnect, and remembers it just after: what it remembers is
	// already stale, and its next call is refused.
	h, other := twoGenerations(t)
	h.connect(h.as, "notion", "alice")
	inRead, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	hook := func(key string) {
		if key == grantKey("notion", "alice") && held.CompareAndSwap(false, true) {
			close(inRead)
			<-release
		}
	}
	h.st.afterGet.Store(&hook)
	done := make(chan error, 1)
	go func() {
		_, err := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
		done <- err
	}()
	<-inRead
	if _, err := h.m.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
		t.Fatal(err)
	}
	close(release)
	// That call began before the disconnect ended, and may go either way.
	var ce *ConsentError
	if err := <-done; err != nil && !errors.As(err, &ce) {
		t.Fatalf("the call that read before the disconnect: %v", err)
	}
	_, err := other.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice"})
	if !errors.As(err, &ce) {
		t.Fatalf("the other generation after the disconnect: %v", err)
	}
}
