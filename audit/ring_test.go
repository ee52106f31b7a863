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
