package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestWatchOrphansAtReload: a config that starts beside another, a
// reload, does not look for orphans at its start, even once the old
// config has stopped by the time its watcher runs (the old config's Stop
// hands its removals to Removed, which revokes with the old client); a
// config that starts alone looks at once.
func TestWatchOrphansAtReload(t *testing.T) {
	for _, tc := range []struct {
		name        string
		aloneAtCall bool
		wantLooks   int64
	}{
		{"a reload", false, 0},
		{"a start alone", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Removals{OAuth: &oauthflow.Options{Store: store.NewMemory()}, Audit: func(_, _, _ string) {}, Logger: zap.NewNop()}
			var calls, looks atomic.Int64
			// The first answer is the start's; by the time the watcher
			// runs, the old config has stopped and this one is alone.
			alone := func() bool { return calls.Add(1) > 1 || tc.aloneAtCall }
			snap := func() *connectors.Snapshot { looks.Add(1); return &connectors.Snapshot{} }
			r.WatchOrphans(snap, alone)
			if calls.Load() == 0 {
				t.Fatal("WatchOrphans returned before it judged whether the config starts alone")
			}
			deadline := time.Now().Add(2 * time.Second)
			for tc.wantLooks > 0 && looks.Load() < tc.wantLooks && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			r.Stop()
			if got := looks.Load(); got != tc.wantLooks {
				t.Errorf("looked for orphans %d times, want %d", got, tc.wantLooks)
			}
		})
	}
}

// TestRemovingClaimsConnector: a removal under way claims its connector,
// which the search for orphans then counts as served, from before it
// starts until it ends; a removal refused after Stop claims nothing.
func TestRemovingClaimsConnector(t *testing.T) {
	r := &Removals{OAuth: &oauthflow.Options{Store: store.NewMemory()}, Audit: func(_, _, _ string) {}, Logger: zap.NewNop()}
	release := make(chan struct{})
	r.runFor("notes", func(context.Context) { <-release })
	if !r.isRemoving("notes") || r.isRemoving("team") {
		t.Fatalf("while notes is removed: removing notes %v, team %v", r.isRemoving("notes"), r.isRemoving("team"))
	}
	close(release)
	r.Stop()
	if r.isRemoving("notes") {
		t.Error("notes is still claimed after its removal ended")
	}
	r.runFor("notes", func(context.Context) { t.Error("a removal ran after Stop") })
	if r.isRemoving("notes") {
		t.Error("a removal refused after Stop left notes claimed")
	}
}
