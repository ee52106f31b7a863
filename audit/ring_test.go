package audit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// countingStore counts the batches written to it.
type countingStore struct {
	*store.Memory
	batches atomic.Int64
}

func (s *countingStore) Batch(ctx context.Context, writes []store.Write) error {
	s.batches.Add(1)
	return s.Memory.Batch(ctx, writes)
}

// TestSteadyCallsShareBatches records a steady stream of tool calls, one
// a millisecond as agents make them, and checks that the writer gathers
// them into a few store transactions rather than one each: on Badger
// every transaction is a disk sync, which cost more than the call.
func TestSteadyCallsShareBatches(t *testing.T) {
	st := &countingStore{Memory: store.NewMemory()}
	l := newLog(t, Options{Store: st})
	const calls = 100
	start := time.Now()
	for i := range calls {
		l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, User: "alice", Detail: fmt.Sprint(i)})
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	got := query(t, l, Filter{Limit: calls})
	if len(got) != calls || l.Dropped() != 0 {
		t.Fatalf("%d events kept, %d dropped; want %d and 0", len(got), l.Dropped(), calls)
	}
	// About one batch per gatherDelay, and the one Query flushed; a loaded
	// machine only makes the batches fewer and larger. Written as they
	// came, they were nearly one batch each.
	want := int64(2*elapsed/gatherDelay) + 2
	if n := st.batches.Load(); n > want {
		t.Errorf("%d calls over %v went in %d batches, want at most %d", calls, elapsed.Round(time.Millisecond), n, want)
	}
}

// TestStallKeepsEvery holds the store's first batch while seconds of
// tool calls arrive at 5,000 a second, as Badger does when a memtable
// flush falls behind: with the default buffer, every event waits for the
// store and reaches it, none dropped.
func TestStallKeepsEvery(t *testing.T) {
	st := &blockingStore{Memory: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	l := newLog(t, Options{Store: st, Max: 20000})
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, User: "alice", Detail: "first"})
	<-st.entered // the writer holds "first" and waits in the store
	const calls = 10000
	for i := range calls {
		l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, User: "alice", Detail: fmt.Sprint(i)})
	}
	close(st.release)
	got := query(t, l, Filter{Limit: calls + 1})
	if len(got) != calls+1 || l.Dropped() != 0 {
		t.Errorf("%d events kept, %d dropped; want %d and 0", len(got), l.Dropped(), calls+1)
	}
}
