package oauthflow

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestLeaseHeldElsewhere: while another instance holds a grant's lease,
// a refresh waits for it, and past the wait fails without asking the
// server; a disconnect goes ahead without the lease.
func TestLeaseHeldElsewhere(t *testing.T) {
	h := newHarness(t, nil)
	h.m.leaseWait = 300 * time.Millisecond
	h.connect(h.as, "notion", "alice")
	ctx := context.Background()
	h.expire()
	// The store's leases expire by the harness's clock.
	if _, err := h.st.Acquire(ctx, grantKey("notion", "alice"), "another instance", time.Hour); err != nil {
		t.Fatal(err)
	}
	calls := h.as.tokenCalls.Load()
	if _, err := h.token("notion", "alice"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Token while another instance holds the lease = %v, want ErrBusy", err)
	}
	if n := h.as.tokenCalls.Load() - calls; n != 0 {
		t.Fatalf("%d token requests without the lease", n)
	}
	if _, err := h.m.Disconnect(ctx, "notion", "alice", ""); err != nil {
		t.Fatalf("Disconnect while another instance holds the lease: %v", err)
	}
	if g := h.grant("notion", "alice"); g.Connection.State != connectors.StateDisconnected || g.RefreshToken != "" {
		t.Fatalf("the grant after the disconnect: %v", g)
	}
}

// TestUnsavedRefreshKeepsLease: a refresh whose rotated tokens cannot be
// stored keeps the grant's lease, so that no other instance refreshes
// with the refresh token it spent; once stored, the lease is released.
func TestUnsavedRefreshKeepsLease(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.expire()
	h.st.failPut.Store(true)
	if _, err := h.token("notion", "alice"); !errors.Is(err, errPut) {
		t.Fatalf("Token with a failing store = %v", err)
	}
	ctx, key := context.Background(), grantKey("notion", "alice")
	if _, err := h.st.Acquire(ctx, key, "another instance", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("another instance's Acquire after the unsaved refresh = %v, want ErrLeaseHeld", err)
	}
	h.st.failPut.Store(false)
	h.clock.Add(refreshBackoff)
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	l, err := h.st.Acquire(ctx, key, "another instance", time.Minute)
	if err != nil {
		t.Fatalf("another instance's Acquire once stored = %v", err)
	}
	h.st.Release(ctx, l)
}

// noLeases is a store on which Acquire fails, as it does when the
// database cannot be reached for it.
type noLeases struct{ *memStore }

func (noLeases) Acquire(context.Context, string, string, time.Duration) (store.Lease, error) {
	return store.Lease{}, errors.New("no leases here")
}

// TestRefreshOvertakenByDisconnect: another instance disconnects, without
// the lease, while a refresh is in flight. The refresh's write, made on
// the version it read, loses: the grant stays disconnected, and the tokens
// the refresh got, which nothing holds, are revoked.
func TestRefreshOvertakenByDisconnect(t *testing.T) {
	var opts Options
	var cfgs []Config
	h := newHarness(t, func(_ *harness, o *Options, c *[]Config) { opts, cfgs = *o, *c })
	opts.Store = noLeases{h.st}
	other, err := New(opts, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	h.connect(h.as, "notion", "alice")
	old := h.grant("notion", "alice")
	h.expire()
	inFlight, release := make(chan struct{}), make(chan struct{})
	h.as.set(func(a *fakeAS) {
		a.onToken = func(http.ResponseWriter, request) bool {
			close(inFlight)
			<-release
			return false
		}
		// The old refresh token still refreshes once revoked, as at a
		// server whose revocation takes effect a moment later.
		a.onRevoke = func(_ http.ResponseWriter, r request) bool { return r.form.Get("token") == old.RefreshToken }
	})
	done := make(chan error, 1)
	go func() {
		_, err := h.token("notion", "alice")
		done <- err
	}()
	<-inFlight
	if _, err := other.Disconnect(context.Background(), "notion", "alice", ""); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	close(release)
	var ce *ConsentError
	if err := <-done; !errors.As(err, &ce) {
		t.Fatalf("the overtaken refresh = %v, want a ConsentError", err)
	}
	if g := h.grant("notion", "alice"); g.Connection.State != connectors.StateDisconnected || g.AccessToken != "" || g.RefreshToken != "" {
		t.Fatalf("the grant after the race: %v", g)
	}
	revoked := map[string]bool{}
	for _, r := range h.as.revokeRequests() {
		revoked[r.form.Get("token")] = true
	}
	h.as.mu.Lock()
	defer h.as.mu.Unlock()
	if len(h.as.refresh) != 0 || len(revoked) != 4 {
		t.Fatalf("after the race, %d refresh tokens live (want none), %d tokens revoked (want the old and the new, two each)",
			len(h.as.refresh), len(revoked))
	}
}

// TestNoticesFromOthers: a notice from other Locks makes the copy in
// memory stale; one's own notice, and a malformed one, do not.
func TestNoticesFromOthers(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	key := grantKey("notion", "alice")
	e := h.m.conns["notion"].cached("alice")
	for _, payload := range []string{h.m.locks.notice(key), "", "no-sender", noticeID("oauth/grants/notion/bob") + " someone"} {
		h.m.locks.heard(payload)
		if !e.stamp.current() {
			t.Fatalf("the notice %q made alice's grant stale", payload)
		}
	}
	h.m.locks.heard(new(Locks).notice(key))
	if e.stamp.current() {
		t.Fatal("another instance's notice left alice's grant current")
	}
}

// TestStoreDownKeepsCachedToken: when the store cannot be read once a
// cached grant is maxCacheAge old, its token serves on; unless a change of
// it was announced, which fails the call closed.
func TestStoreDownKeepsCachedToken(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	h.st.failGet.Store(true)
	for range 2 {
		h.clock.Add(maxCacheAge)
		if got, err := h.token("notion", "alice"); err != nil || got != tok {
			t.Fatalf("with the store down: %v, %v; want the cached token", got, err)
		}
	}
	h.m.locks.heard(new(Locks).notice(grantKey("notion", "alice")))
	if _, err := h.token("notion", "alice"); !errors.Is(err, errGet) {
		t.Fatalf("with the store down, after a change was announced: %v, want the store's error", err)
	}
}
