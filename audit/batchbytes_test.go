package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// escaped is a text that JSON escapes at six bytes a byte once anything
// in it needs escaping: a control character makes appendString quote it
// with encoding/json, which writes each of < > & as \u003c and so on.
var escaped = "\x01" + strings.Repeat("<>&", maxField)

// worstEvent is a tool call whose every text field that an agent or an
// upstream may fill is cut at maxField and escapes to six times its
// length: about 6 KB stored.
func worstEvent(i int) Event {
	return Event{Kind: KindToolCall, User: escaped, Connector: escaped, Tool: escaped, Decision: DecisionAllow,
		Outcome: OutcomeOK, Detail: fmt.Sprintf("%d %s", i, escaped), Duration: time.Millisecond}
}

// TestRingBatchBytes records a burst of events whose texts JSON escapes
// to six times their length, into Badger: a batch of maxBatch of them is
// megabytes, more than a Badger transaction takes, and it failed whole,
// all its events lost. Batches are capped by bytes as well as by count,
// so every event is kept.
func TestRingBatchBytes(t *testing.T) {
	l := newLog(t, Options{Store: openBadger(t, t.TempDir()), Max: 1000})
	const events = 2*maxBatch + 10
	for i := range events {
		l.Record(worstEvent(i))
	}
	got := query(t, l, Filter{Limit: events})
	if len(got) != events || l.Dropped() != 0 {
		t.Fatalf("%d events kept, %d dropped; want %d and 0", len(got), l.Dropped(), events)
	}
	if !strings.HasPrefix(got[0].Detail, fmt.Sprintf("%d ", events-1)) {
		t.Errorf("the newest event kept is not the last recorded")
	}
}

// TestBatchCostBounds: batchCost is at least what an event takes of a
// transaction, for plain, escaped, non-ASCII and invalid UTF-8 texts.
func TestBatchCostBounds(t *testing.T) {
	texts := []string{"", "alice", escaped, strings.Repeat("é", maxField/2), "\xff\xfe" + strings.Repeat("\u2028", 80),
		strings.Repeat(`"\`, maxField/2), strings.Repeat("a", maxField)}
	for _, text := range texts {
		e := Event{Time: time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -12*3600)),
			Kind: Kind(text), User: text, Connector: text, Tool: text, Decision: text, Outcome: text,
			ArgsHash: text, Detail: text, Count: -1 << 62, Duration: -1 << 62}
		line := appendPage(nil, []item{{seq: 1<<64 - 1, class: classCallAttempts, event: e}})
		stored := len(line) + 2*(len(pageKey(classCallAttempts, page{last: 1<<64 - 1, n: maxBatch}))+badgerEntry)
		if cost := batchCost(e); cost < stored {
			t.Errorf("text %.20q: batchCost %d, stored with its keys %d", text, cost, stored)
		}
	}
}

// TestOrdinaryBatchFull: the byte cap leaves ordinary tool calls their
// batches of maxBatch, each one store transaction and one disk sync.
func TestOrdinaryBatchFull(t *testing.T) {
	e := Event{Kind: KindToolCall, User: "someone.with.a.long.name@example.com", Connector: "github-enterprise",
		Tool: "create_pull_request_review", Decision: DecisionAllow, Outcome: OutcomeOK,
		ArgsHash: strings.Repeat("f", 32), Duration: time.Second}
	if cost := maxBatch * batchCost(e); cost > maxBatchBytes {
		t.Errorf("%d ordinary tool calls cost %d bytes, past maxBatchBytes %d", maxBatch, cost, maxBatchBytes)
	}
}

// TestOlderRingMovesLarge moves an older ring of events of 6 KB each,
// which its chunks of maxBatch/2 events made 780 KB transactions, past
// what Badger takes in one: the Log did not open. They move in
// transactions capped by bytes.
func TestOlderRingMovesLarge(t *testing.T) {
	b := openBadger(t, t.TempDir())
	ctx := context.Background()
	const events = 200
	for n := uint64(1); n <= events; n++ {
		v := fmt.Sprintf(`{"kind":"tool_call","detail":"%d %s"}`, n, strings.Repeat(`\u003c`, 1000))
		if err := b.Put(ctx, legacyKey(n), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	l := newLog(t, Options{Store: b, Max: 1000})
	got := query(t, l, Filter{Limit: events})
	if len(got) != events || !strings.HasPrefix(got[0].Detail, fmt.Sprint(events, " <")) {
		t.Fatalf("Query answered %d events; want %d", len(got), events)
	}
	if keys := sequences(t, b); len(keys) != events {
		t.Errorf("the store holds %d events, want %d", len(keys), events)
	}
}
