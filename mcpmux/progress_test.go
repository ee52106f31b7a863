package mcpmux

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// progressNote is a progress notification for the gateway's token id.
func progressNote(id, progress string) []byte {
	return []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"` + id +
		`","progress":` + progress + `,"total":9}}`)
}

// trackedToken starts a route to sink and returns the gateway's token.
func trackedToken(t *testing.T, p *progressRoutes, sink notifySink) string {
	t.Helper()
	params, forget := p.track([]byte(`{"_meta":{"progressToken":"agent-tok"}}`), sink)
	t.Cleanup(forget)
	id, ok := stringMember(member(params, "_meta"), "progressToken")
	if !ok || id == "agent-tok" {
		t.Fatalf("track did not replace the token: %s", params)
	}
	return id
}

// progressValues returns the progress values of the delivered messages,
// checking that each carries the agent's own token.
func progressValues(t *testing.T, msgs [][]byte) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		params := member(m, "params")
		if tok, _ := stringMember(params, "progressToken"); tok != "agent-tok" {
			t.Errorf("delivered with token %q: %s", tok, m)
		}
		out = append(out, string(member(params, "progress")))
	}
	return out
}

// TestProgressDeliverOrder checks that a route delivers progress in the
// order of its values: one that arrives after a later one is dropped, and
// one without a numeric value, which cannot be ordered, goes through.
func TestProgressDeliverOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arrive  []string
		deliver []string
	}{
		{"in order", []string{"1", "2", "3"}, []string{"1", "2", "3"}},
		{"late first", []string{"2", "1", "3"}, []string{"2", "3"}},
		{"late last", []string{"1", "3", "2"}, []string{"1", "3"}},
		{"repeated value", []string{"1", "1", "2"}, []string{"1", "1", "2"}},
		{"fractions", []string{"0.5", "0.25", "0.75"}, []string{"0.5", "0.75"}},
		{"not a number", []string{"2", `"x"`, "1"}, []string{"2", `"x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p progressRoutes
			var got [][]byte
			id := trackedToken(t, &p, func(msg []byte) { got = append(got, msg) })
			for _, v := range tc.arrive {
				if !p.deliver(progressNote(id, v)) {
					t.Fatalf("progress %s for a request in flight was not taken", v)
				}
			}
			if d := progressValues(t, got); !slices.Equal(d, tc.deliver) {
				t.Errorf("delivered %v, want %v", d, tc.deliver)
			}
		})
	}
}

// TestProgressDeliverConcurrent checks that two streams delivering one
// request's progress at once (as a legacy upstream session's streams do,
// each with its own reader) never hand the agent a value lower than one
// it already has.
func TestProgressDeliverConcurrent(t *testing.T) {
	var p progressRoutes
	var mu sync.Mutex
	var got [][]byte
	id := trackedToken(t, &p, func(msg []byte) {
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
	})
	const n = 2000
	var wg sync.WaitGroup
	for stream := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := stream; i < n; i += 2 {
				p.deliver(progressNote(id, strconv.Itoa(i)))
			}
		}()
	}
	wg.Wait()
	var last float64 = -1
	for _, v := range progressValues(t, got) {
		var f float64
		if err := json.Unmarshal([]byte(v), &f); err != nil || f < last {
			t.Fatalf("progress %s delivered after %v", v, last)
		}
		last = f
	}
	if last != n-1 {
		t.Errorf("the last progress delivered is %v, want %d", last, n-1)
	}
}

// TestProgressDeliverUnknown checks that progress for no request in flight
// is not taken.
func TestProgressDeliverUnknown(t *testing.T) {
	var p progressRoutes
	if p.deliver(progressNote("mcpgate-99", "1")) {
		t.Error("progress for an unknown token was delivered")
	}
}
