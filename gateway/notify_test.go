package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// servesA are the connectors and grants of these tests' instances:
// connector "a" at up, granted to every caller.
func servesA(up *testupstream.Server) connectors.Options {
	return connectors.Options{
		Config: []connectors.Config{{ID: "a", URL: up.URL}},
		Grants: []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}},
	}
}

// settle lets late notices arrive, so that counting them is exact. The
// streams need no wait: listen returns once the instance holds them.
func settle() { time.Sleep(400 * time.Millisecond) }

// TestGenerationAnnounced checks that a new registry generation tells
// the agents listening, once each, in both eras: a runtime connector
// added does; the generation the registry's opening builds does not, as
// the agents could not have listed the one it replaces (it served no
// store), and a config reload's is the host's to tell.
func TestGenerationAnnounced(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	for _, era := range agenttest.Eras {
		t.Run(era.Name, func(t *testing.T) {
			t.Parallel()
			in := startInstance(t, servesA(up))
			alice := in.listen(t, "alice", era)
			in.open(t, store.NewMemory())
			settle()
			if n := alice.Tools(); n != 0 {
				t.Fatalf("the agent was told of %d changes before any", n)
			}
			if _, err := in.reg.Add(context.Background(), connectors.AddRequest{Config: connectors.Config{ID: "b", URL: up.URL}}); err != nil {
				t.Fatal(err)
			}
			wait.Until(t, 5*time.Second, "the agent told of the runtime connector", func() bool { return alice.Tools() > 0 })
			settle()
			if n := alice.Tools(); n != 1 {
				t.Errorf("one registry change made %d notices", n)
			}
		})
	}
}

// TestConsentNewsAcrossInstances checks that a consent given or withdrawn
// through one instance reaches the listening agents of the user it
// concerns on another instance sharing the store, and only theirs; an
// event that changes no one's access sends nothing.
func TestConsentNewsAcrossInstances(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	for _, era := range agenttest.Eras {
		t.Run(era.Name, func(t *testing.T) {
			t.Parallel()
			shared := store.NewMemory()
			a, b := startInstance(t, servesA(up)), startInstance(t, servesA(up))
			a.open(t, store.NewMemory())
			b.open(t, store.NewMemory())
			key := []byte("a key the instances derive alike")
			newsA, newsB := &ConsentNews{Live: a.live, Logger: zap.NewNop()}, &ConsentNews{Live: b.live, Logger: zap.NewNop()}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			for i, n := range []*ConsentNews{newsA, newsB} {
				if err := n.Follow(ctx, shared, key, []string{"A", "B"}[i]); err != nil {
					t.Fatal(err)
				}
			}
			alice, bob := b.listen(t, "alice", era), b.listen(t, "bob", era)

			newsA.OAuthEvent(oauthflow.Event{Kind: oauthflow.EventConsentStart, Connector: "a", User: "alice", Outcome: oauthflow.OutcomeOK})
			newsA.OAuthEvent(oauthflow.Event{Kind: oauthflow.EventConsentFinish, Connector: "a", User: "alice", Outcome: oauthflow.OutcomeError})
			newsA.OAuthEvent(oauthflow.Event{Kind: oauthflow.EventConsentFinish, Connector: "a", User: "alice", Outcome: oauthflow.OutcomeOK})
			wait.Until(t, 5*time.Second, "alice on the other instance told of her consent", func() bool { return alice.Tools() > 0 })
			newsA.OAuthEvent(oauthflow.Event{Kind: oauthflow.EventDisconnect, Connector: "a", User: "bob", Outcome: oauthflow.OutcomeOK})
			wait.Until(t, 5*time.Second, "bob on the other instance told of his disconnect", func() bool { return bob.Tools() > 0 })
			settle()
			if n := alice.Tools(); n != 1 {
				t.Errorf("alice was told %d times, want once (her consent only)", n)
			}
			if n := bob.Tools(); n != 1 {
				t.Errorf("bob was told %d times, want once (his disconnect only)", n)
			}
		})
	}
}

// gatedStore is a memory store whose Notify waits until released, and
// which counts the notices sent once it is marked closed.
type gatedStore struct {
	*store.Memory
	entered chan struct{}
	release chan struct{}
	closed  atomic.Bool
	late    atomic.Int32
}

// Notify implements store.Notifier.
func (g *gatedStore) Notify(ctx context.Context, channel, payload string) error {
	g.entered <- struct{}{}
	<-g.release
	if g.closed.Load() {
		g.late.Add(1)
	}
	return g.Memory.Notify(ctx, channel, payload)
}

// TestConsentNewsStop checks that Stop waits for a notice on its way to
// the other instances, so that the root closes the store only after it,
// and that no notice goes out after Stop.
func TestConsentNewsStop(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	in := startInstance(t, servesA(up))
	st := &gatedStore{Memory: store.NewMemory(), entered: make(chan struct{}, 4), release: make(chan struct{})}
	news := &ConsentNews{Live: in.live, Logger: zap.NewNop()}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := news.Follow(ctx, st, []byte("key"), "A"); err != nil {
		t.Fatal(err)
	}
	consent := oauthflow.Event{Kind: oauthflow.EventConsentFinish, Connector: "a", User: "alice", Outcome: oauthflow.OutcomeOK}
	checkStopWaits(t, st, func() { news.OAuthEvent(consent) }, news.Stop)
}

// checkStopWaits checks that stop waits for the notice that send sends
// through st, and that none goes out after it.
func checkStopWaits(t *testing.T, st *gatedStore, send, stop func()) {
	t.Helper()
	send()
	<-st.entered
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a notice was on its way")
	case <-time.After(200 * time.Millisecond):
	}
	close(st.release)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return once the notice went out")
	}
	st.closed.Store(true)
	send()
	settle()
	if n := st.late.Load(); n != 0 {
		t.Errorf("%d notices went out after Stop", n)
	}
}

// TestChangesAccess checks which OAuth events tell agents that what they
// may use changed: a refresh that stops the connection does, whatever its
// outcome, and one that leaves it as it was does not, so that a provider
// that stays down does not repeat the notice at every retry.
func TestChangesAccess(t *testing.T) {
	for _, tc := range []struct {
		e    oauthflow.Event
		want bool
	}{
		{oauthflow.Event{Kind: oauthflow.EventConsentFinish, Outcome: oauthflow.OutcomeOK}, true},
		{oauthflow.Event{Kind: oauthflow.EventConsentFinish, Outcome: oauthflow.OutcomeError}, false},
		{oauthflow.Event{Kind: oauthflow.EventDisconnect, Outcome: oauthflow.OutcomeOK}, true},
		{oauthflow.Event{Kind: oauthflow.EventRefresh, Outcome: oauthflow.OutcomeInvalidGrant}, true},
		{oauthflow.Event{Kind: oauthflow.EventRefresh, Outcome: oauthflow.OutcomeFailed, Stopped: true}, true},
		{oauthflow.Event{Kind: oauthflow.EventRefresh, Outcome: oauthflow.OutcomeFailed}, false},
		{oauthflow.Event{Kind: oauthflow.EventRefresh, Outcome: oauthflow.OutcomeOK}, false},
		{oauthflow.Event{Kind: oauthflow.EventConsentStart, Outcome: oauthflow.OutcomeOK}, false},
	} {
		if got := changesAccess(tc.e); got != tc.want {
			t.Errorf("changesAccess(%+v) = %v, want %v", tc.e, got, tc.want)
		}
	}
}

// TestListNewsStop checks that Stop waits for a list change on its way to
// the other instances, and that none goes out after it.
func TestListNewsStop(t *testing.T) {
	t.Parallel()
	st := &gatedStore{Memory: store.NewMemory(), entered: make(chan struct{}, 4), release: make(chan struct{})}
	news := &ListNews{Store: st, Instance: "A", Logger: zap.NewNop()}
	checkStopWaits(t, st, func() { news.Tell("a", "notifications/tools/list_changed") }, news.Stop)
}
