package oauthflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/postgres"
)

// Several instances on one store: each instance is a Manager with its own
// Locks and its own clock, all on one shared store, against the real
// authorization server (oidc-provider), which rotates refresh tokens and
// revokes the whole grant when a rotated-out one is used again (RFC 9700
// §4.14.2). Every test runs on each shared backend.

// waitDeadline bounds each wait for something that must happen; no test
// asserts that it happens quickly.
const waitDeadline = 30 * time.Second

// sharedBackends are the stores that several instances can share: memory
// (one process) and PostgreSQL (sealed, as the gateway uses it).
var sharedBackends = []struct {
	name string
	open func(t *testing.T) store.Shared
}{
	{"memory", func(*testing.T) store.Shared { return store.NewMemory() }},
	{"postgres", func(t *testing.T) store.Shared {
		db, err := postgres.Open(t.Context(), pgtest.Start(t), nil)
		if err != nil {
			t.Fatalf("opening PostgreSQL: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		ring, err := store.NewRing([][]byte{bytes.Repeat([]byte{9}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return store.Seal(db, ring)
	}},
}

// eachBackend runs test once per shared backend.
func eachBackend(t *testing.T, test func(t *testing.T, st store.Shared)) {
	for _, b := range sharedBackends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

// realServer starts an MCP upstream guarded by a real authorization
// server whose access tokens live ttl (zero: an hour) and that lets
// accounts log in.
func realServer(t *testing.T, ttl time.Duration, accounts ...string) (*testas.AS, string) {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: ttl, Accounts: accounts})
	up.SetGuard(as.Protect)
	return as, up.URL
}

// instance is a Manager with its own Locks on st, on clock, whose
// connector "notion" is the MCP server at connectorURL.
func instance(t *testing.T, st store.Store, connectorURL string, clock *fakeClock) *Manager {
	t.Helper()
	m, err := New(Options{Store: st, PublicURL: publicURL, StateKey: []byte("0123456789abcdef0123456789abcdef"), Now: clock.Now},
		[]Config{realConfig(t, connectorURL, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// instances is n instances on st, each with its own clock set to now.
func instances(t *testing.T, n int, st store.Store, connectorURL string) ([]*Manager, []*fakeClock) {
	ms, clocks := make([]*Manager, n), make([]*fakeClock, n)
	now := time.Now()
	for i := range n {
		clocks[i] = &fakeClock{t: now}
		ms[i] = instance(t, st, connectorURL, clocks[i])
	}
	return ms, clocks
}

// consent starts user's consent on start and completes its callback on
// finish, then waits until every instance of all sees the grant: the
// others hear of it through a notice, which may arrive a moment after
// the callback returns.
func consent(t *testing.T, start, finish *Manager, user string, all ...*Manager) {
	t.Helper()
	authURL, err := start.Start(context.Background(), "notion", user, "")
	if err != nil {
		t.Fatalf("Start for %s: %v", user, err)
	}
	cb, err := url.Parse(testas.Authorize(t, authURL, user, publicURL+CallbackPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := finish.Callback(context.Background(), cb.Query(), user); err != nil {
		t.Fatalf("Callback for %s: %v", user, err)
	}
	for i, m := range all {
		wait.Until(t, waitDeadline, fmt.Sprintf("instance %d does not see %s's consent", i, user), func() bool {
			return m.Connection(context.Background(), "notion", user).State == connectors.StateActive
		})
	}
}

// tokenOf asks m for user's token.
func tokenOf(m *Manager, user string) (Token, error) {
	return m.Token(context.Background(), TokenRequest{Connector: "notion", User: user})
}

// storedGrant reads user's grant from st.
func storedGrant(t *testing.T, st store.Store, user string) grantRecord {
	t.Helper()
	var g grantRecord
	if err := getJSON(context.Background(), st, grantKey("notion", user), (*grantWire)(&g)); err != nil {
		t.Fatalf("reading %s's grant: %v", user, err)
	}
	return g
}

// serverStats reads the authorization server's counters.
func serverStats(t *testing.T, as *testas.AS) testas.Stats {
	t.Helper()
	st, err := as.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestClusterRefreshStorm: three instances, each asked at once for an
// expired token many times over several expiries. Each expiry costs one
// refresh at the server, whichever instances are asked: the others wait
// for the lease and adopt the rotated grant rather than replay its
// refresh token, which would revoke the grant.
func TestClusterRefreshStorm(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Shared) {
		const ttl, expiries, callers = 3 * time.Second, 4, 150
		as, mcpURL := realServer(t, ttl)
		ms, clocks := instances(t, 3, st, mcpURL)
		// Started through the first, completed through the second, used
		// through the third.
		consent(t, ms[0], ms[1], "alice", ms...)
		if _, err := tokenOf(ms[2], "alice"); err != nil {
			t.Fatalf("the third instance after the consent: %v", err)
		}
		for round := 1; round <= expiries; round++ {
			// The clocks stand still within a round, so that the token
			// expires once per round however slow the machine is.
			for _, c := range clocks {
				c.Add(ttl) // past the token's lifetime
			}
			tokens, errs := make([]Token, callers), make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() { tokens[i], errs[i] = tokenOf(ms[i%len(ms)], "alice") })
			}
			wg.Wait()
			for i := range callers {
				if errs[i] != nil || tokens[i] != tokens[0] {
					t.Fatalf("round %d, call %d (instance %d): %v, %v; want the token of call 0, %v", round, i, i%len(ms), tokens[i], errs[i], tokens[0])
				}
			}
			stats := serverStats(t, as)
			if n := stats.TokenRequests["refresh_token"]; n != round {
				t.Fatalf("after %d expiries, %d refresh requests at the server: %+v", round, n, stats)
			}
			if len(stats.TokenErrors) != 0 {
				t.Fatalf("the server refused token requests: %+v", stats.TokenErrors)
			}
		}
		if g := storedGrant(t, st, "alice"); g.Connection.State != connectors.StateActive || g.RefreshToken == "" {
			t.Fatalf("the grant after the storm: %v", g)
		}
	})
}

// TestClusterDisconnect: a disconnect through one instance stops
// another's use of its cached token: at once through the store's notice,
// and, when notices are lost, once the cached copy is maxCacheAge old.
// The other instance's clock stands still until the test moves it, so
// that only the notice, or the test's move, can end the token.
func TestClusterDisconnect(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Shared) {
		_, mcpURL := realServer(t, 0, "alice", "bob")
		t.Run("notice", func(t *testing.T) {
			ms, _ := instances(t, 2, st, mcpURL)
			servedThenDisconnected(t, ms, "alice")
			wait.Until(t, waitDeadline, "the other instance still hands out the disconnected token", func() bool {
				_, err := tokenOf(ms[1], "alice")
				var ce *ConsentError
				return errors.As(err, &ce) && ce.Status == connectors.StatusNeedsAuth
			})
		})
		t.Run("notices lost", func(t *testing.T) {
			ms, clocks := instances(t, 2, deaf{st}, mcpURL)
			tok := servedThenDisconnected(t, ms, "bob")
			clocks[1].Add(maxCacheAge - time.Second)
			if got, err := tokenOf(ms[1], "bob"); err != nil || got != tok {
				t.Fatalf("before the bound, without the notice: %v, %v; want the cached token", got, err)
			}
			clocks[1].Add(time.Second)
			_, err := tokenOf(ms[1], "bob")
			var ce *ConsentError
			if !errors.As(err, &ce) || ce.Status != connectors.StatusNeedsAuth {
				t.Fatalf("%v after the disconnect: %v", maxCacheAge, err)
			}
		})
	})
}

// servedThenDisconnected has user consent through the first instance,
// the second hand out the token, and then the first disconnect the user.
// It returns the token.
func servedThenDisconnected(t *testing.T, ms []*Manager, user string) Token {
	t.Helper()
	consent(t, ms[0], ms[1], user)
	tok, err := tokenOf(ms[1], user)
	if err != nil {
		t.Fatalf("the second instance before the disconnect: %v", err)
	}
	if _, err := ms[0].Disconnect(context.Background(), "notion", user, ""); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	return tok
}

// deaf is a shared store whose notices are lost.
type deaf struct{ store.Shared }

// Notify sends nothing.
func (deaf) Notify(context.Context, string, string) error { return nil }

// TestClusterFirstConsents: two users' first consents at once, through
// two instances, both of which find no client: one registers, under the
// client's lease, and the other, once it holds the lease, finds that
// client and uses it. The server and the store have exactly one client,
// and both consents and their tokens work.
func TestClusterFirstConsents(t *testing.T) {
	eachBackend(t, func(t *testing.T, st store.Shared) {
		as, mcpURL := realServer(t, 0, "alice", "bob")
		both := &clientReads{Shared: st, arrived: make(chan struct{})}
		ms, _ := instances(t, 2, both, mcpURL)
		users := []string{"alice", "bob"}
		var wg sync.WaitGroup
		for i, user := range users {
			// Started through one instance, completed through the other.
			wg.Go(func() { consent(t, ms[i], ms[1-i], user, ms...) })
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if n := serverStats(t, as).Registrations; n != 1 {
			t.Fatalf("%d registrations at the server, want one", n)
		}
		both.mu.Lock()
		reads := both.n
		both.mu.Unlock()
		if reads < 3 {
			t.Fatalf("the client was read %d times: the race did not happen (both instances read, then one again under the lease)", reads)
		}
		keys, err := st.List(context.Background(), prefixClients)
		if err != nil || len(keys) != 1 {
			t.Fatalf("the stored clients: %q, %v; want one", keys, err)
		}
		var client clientRecord
		if err := getJSON(context.Background(), st, keys[0], (*clientWire)(&client)); err != nil {
			t.Fatal(err)
		}
		for i, user := range users {
			if g := storedGrant(t, st, user); g.ClientID != client.ClientID {
				t.Errorf("%s's grant is of client %q, not the stored %q", user, g.ClientID, client.ClientID)
			}
			if _, err := tokenOf(ms[i], user); err != nil {
				t.Errorf("%s's token: %v", user, err)
			}
		}
	})
}

// clientReads is a shared store on which the first two reads of a client
// registration, once read, wait for each other before they answer, so
// that two instances both find none and both register.
type clientReads struct {
	store.Shared

	mu      sync.Mutex
	n       int
	arrived chan struct{} // closed at the second read
}

// wait holds the first two reads of a client key until both have read.
func (s *clientReads) wait(key string) {
	if !strings.HasPrefix(key, prefixClients) {
		return
	}
	s.mu.Lock()
	s.n++
	if s.n == 2 {
		close(s.arrived)
	}
	first := s.n <= 2
	s.mu.Unlock()
	if first {
		select {
		case <-s.arrived:
		case <-time.After(waitDeadline):
		}
	}
}

// Get waits as GetVersioned does.
func (s *clientReads) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Shared.Get(ctx, key)
	s.wait(key)
	return b, err
}

// GetVersioned holds the first two reads of a client until both have
// read.
func (s *clientReads) GetVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	b, version, err := s.Shared.GetVersioned(ctx, key)
	s.wait(key)
	return b, version, err
}
