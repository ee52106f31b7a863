package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// lastUsed returns in's LastUsed of connector by anyone, failing the test
// on an error.
func (in *instance) lastUsed(t *testing.T, connector string) time.Time {
	t.Helper()
	at, err := in.live.Current().LastUsed(context.Background(), connector, "")
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// flush flushes in's uses to st.
func (in *instance) flush(t *testing.T, st store.Store) {
	t.Helper()
	if err := in.usage.Flush(context.Background(), st); err != nil {
		t.Fatal(err)
	}
}

// noUsageRecord fails if st holds a record of connector's last uses.
func noUsageRecord(t *testing.T, st store.Store, connector string) {
	t.Helper()
	if _, err := st.Get(context.Background(), "usage/"+connector); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the store holds the last uses of %s: %v", connector, err)
	}
}

// TestRemovalForgetsUsage checks that a runtime connector removed as the
// admin API removes it leaves no last use behind, on the instance that
// removed it and on another sharing its store, whose memory of the uses
// goes when it applies the removal, so that neither instance's flush
// stores them again: the connector added again under the id starts with
// none. Another connector's uses stay.
func TestRemovalForgetsUsage(t *testing.T) {
	ctx := context.Background()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	shared := store.NewMemory()
	a, b := startInstance(t, servesA(up)), startInstance(t, servesA(up))
	a.open(t, shared)
	b.open(t, shared)
	x := connectors.AddRequest{Config: connectors.Config{ID: "x", URL: up.URL}}
	if _, err := a.reg.Add(ctx, x); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "b serving x", func() bool { _, ok := b.reg.Snapshot().Entry("x"); return ok })
	for _, in := range []*instance{a, b} {
		in.usage.Touch("x", "alice")
		in.usage.Touch("a", "alice")
	}
	a.flush(t, shared)
	b.usage.Touch("x", "bob") // b's memory only

	err := a.reg.Remove(ctx, "x", func(connectors.Entry) error { return a.live.Current().ForgetUsage(ctx, "x") })
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "b applying the removal", func() bool { _, ok := b.reg.Snapshot().Entry("x"); return !ok })
	a.flush(t, shared)
	b.flush(t, shared)
	noUsageRecord(t, shared, "x")
	if _, err := a.reg.Add(ctx, x); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "b serving x again", func() bool { _, ok := b.reg.Snapshot().Entry("x"); return ok })
	for name, in := range map[string]*instance{"a": a, "b": b} {
		if at := in.lastUsed(t, "x"); !at.IsZero() {
			t.Errorf("x added again was last used at %v on %s", at, name)
		}
		if at := in.lastUsed(t, "a"); at.IsZero() {
			t.Errorf("the uses of connector a are gone on %s", name)
		}
	}
}

// TestRemovedConfigConnectorForgetsUsage checks that a config connector
// that a reload removes leaves no last use behind: its record is deleted,
// and the old generation's memory of its uses goes at once, so that the
// old config's last flush, when it stops, does not store them again.
// Another connector's uses stay.
func TestRemovedConfigConnectorForgetsUsage(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	oldReg, err := connectors.NewRegistry(connectors.Options{Config: []connectors.Config{
		{ID: "kept", URL: "https://kept.example.com/mcp"}, {ID: "gone", URL: "https://gone.example.com/mcp"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	usage := new(connectors.Usage)
	opts := &Options{Usage: usage, OAuth: oauthflow.Options{Store: st}, Logger: zap.NewNop()}
	old, err := Build(opts, oldReg.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(old.close)
	usage.Touch("gone", "alice")
	usage.Touch("kept", "alice")
	if err := usage.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	usage.Touch("gone", "bob") // in memory only, for the last flush
	next, err := connectors.NewRegistry(connectors.Options{Config: []connectors.Config{{ID: "kept", URL: "https://kept.example.com/mcp"}}})
	if err != nil {
		t.Fatal(err)
	}

	r := &Removals{OAuth: &opts.OAuth, Audit: func(string, string, string) {}, Logger: zap.NewNop()}
	r.Removed(old, []string{"kept", "gone"}, next.Snapshot())
	r.Stop()
	if err := usage.Flush(ctx, st); err != nil { // the old config's last flush
		t.Fatal(err)
	}
	noUsageRecord(t, st, "gone")
	if at, err := old.LastUsed(ctx, "gone", ""); !at.IsZero() || err != nil {
		t.Errorf("the removed connector's last use is %v, %v", at, err)
	}
	if at, err := old.LastUsed(ctx, "kept", ""); at.IsZero() || err != nil {
		t.Errorf("the kept connector's last use is %v, %v", at, err)
	}
}
