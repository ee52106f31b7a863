package mcpmux

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestCancelledFetchNotCached checks that a list fetch cut short by a
// cancellation, here the agent's request ending and then the Mux closing,
// leaves no failure in the cache: a cancellation says nothing of the
// upstream, and cached it would hide the upstream's items for errorTTL.
func TestCancelledFetchNotCached(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	// Every response waits until its request is cancelled.
	up.SetDelay(time.Minute)
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &connectors.Connector{ID: "a", URL: u, Timeout: 30 * time.Second}
	policy, err := grants.New([]grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Connectors: []*connectors.Connector{c}, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	cred := Credential{Key: "static", Header: c.Header()}
	ctx, cancel := context.WithCancel(context.Background())
	listed := make(chan error, 1)
	go func() {
		_, err := m.list(ctx, grants.Caller{ID: "alice"}, c, cred, toolsKind)
		listed <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); len(up.Requests()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the upstream saw no request in 5 s")
		}
	}
	cancel()
	select {
	case err := <-listed:
		if err == nil {
			t.Fatal("a list whose request was cancelled succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the list did not return in 5 s once its request was cancelled")
	}
	// Close ends the fetch, if still under way, and waits for it.
	_ = m.Close()
	if l := m.entry(cacheKey{c.ID, cred.Key, toolsKind}).cur.Load(); l != nil && l.err != nil {
		t.Fatalf("a cancelled fetch is cached as the upstream's failure: %v", l.err)
	}
}
