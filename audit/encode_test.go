package audit

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestAppendStored: what the ring stores, and AppendJSON gives a Table,
// decodes to the event, as MarshalJSON's encoding does, whatever its
// strings hold.
func TestAppendStored(t *testing.T) {
	at := time.Date(2026, 12, 7, 21, 5, 6, 789012345, time.FixedZone("x", 3600))
	for _, e := range []Event{
		{Time: at, Kind: KindToolCall},
		{Time: at.UTC(), Kind: KindToolCall, User: "alice", Connector: "notes", Tool: "notes_search",
			Decision: DecisionAllow, Outcome: "ok", Duration: 1234567 * time.Nanosecond, ArgsHash: "0123456789abcdef0123456789abcdef"},
		{Time: at, Kind: KindToolCall, User: "bob", Decision: DecisionDeny, Outcome: OutcomeSuppressed, Count: 42},
		{Time: at, Kind: KindAdminChange, User: `"quoted" \ back`, Detail: "line\nbreak\ttab\x00nul"},
		{Time: at, Kind: KindConsentFinish, User: "zoë 日本", Connector: "<script>&amp;", Detail: "caf\xc3\xa9 \u2028 \xff bad"},
		{Time: at, Kind: KindToolCall, Duration: time.Nanosecond},
		{Time: at, Kind: KindToolCall, Duration: 90 * time.Hour},
	} {
		stored := appendStored(nil, e)
		if !json.Valid(stored) {
			t.Errorf("appendStored(%+v) is not JSON: %s", e, stored)
			continue
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(stored)
		if err != nil {
			t.Errorf("decoding %s: %v", stored, err)
			continue
		}
		fromMarshal, _ := decode(want)
		if !got.Time.Equal(fromMarshal.Time) || got.Duration != fromMarshal.Duration {
			t.Errorf("%s decodes to %v %v, MarshalJSON's %s to %v %v", stored, got.Time, got.Duration, want, fromMarshal.Time, fromMarshal.Duration)
		}
		got.Time, fromMarshal.Time = time.Time{}, time.Time{}
		if got != fromMarshal {
			t.Errorf("%s decodes to %+v, MarshalJSON's %s to %+v", stored, got, want, fromMarshal)
		}
	}
}

// BenchmarkAppendStored is the writer's encoding of one tool call.
func BenchmarkAppendStored(b *testing.B) {
	e := Event{Time: time.Now(), Kind: KindToolCall, User: "bench", Connector: "bench", Tool: "echo",
		Decision: DecisionAllow, Outcome: "ok", Duration: 1234567, ArgsHash: "0123456789abcdef0123456789abcdef"}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendStored(buf[:0], e)
	}
}

// TestKey: a page's key is its class's folder, its newest event's number
// in 20 digits and its count, as parseKey reads it, for the smallest and
// largest numbers.
func TestKey(t *testing.T) {
	for _, n := range []uint64{0, 1, 42, 12345678901234567890, 1<<64 - 1} {
		for c := range numClasses {
			p := page{last: n, n: maxBatch}
			k := pageKey(c, p)
			if want := fmt.Sprintf("%s%s/%020d-%d", Prefix, c, n, maxBatch); k != want {
				t.Errorf("pageKey(%v, %+v) = %q, want %q", c, p, k, want)
			}
			if gc, gp, ok := parseKey(k); !ok || gc != c || gp != p {
				t.Errorf("parseKey(%q) = %v %+v %v", k, gc, gp, ok)
			}
		}
	}
}
