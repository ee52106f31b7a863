package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// fakeClock is a clock that moves only when a test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock on by d.
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// precious are the admin and auth events that no call may evict.
var precious = []Event{
	{Kind: KindAdminChange, Connector: "notes", Outcome: OutcomeOK, Detail: "connector added"},
	{Kind: KindConsentStart, User: "alice", Connector: "notes", Outcome: OutcomeOK, Detail: "consent start"},
	{Kind: KindConsentFinish, User: "alice", Connector: "notes", Outcome: OutcomeOK, Detail: "consent finish"},
	{Kind: KindRefreshFailure, User: "alice", Connector: "notes", Outcome: "invalid_grant", Detail: "refresh failure"},
	{Kind: KindDisconnect, User: "alice", Connector: "notes", Outcome: OutcomeOK, Detail: "disconnect"},
	{Kind: KindRevocation, User: "alice", Connector: "notes", Outcome: OutcomeOK, Detail: "revocation"},
	{Kind: KindAdminChange, Connector: "notes", Outcome: OutcomeOK, Detail: "tools selected"},
}

// wantPrecious checks that every precious event is still in l, found by
// its kind.
func wantPrecious(t *testing.T, l *Log) {
	t.Helper()
	var got []string
	for _, kind := range []Kind{KindAdminChange, KindConsentStart, KindConsentFinish, KindRefreshFailure, KindDisconnect, KindRevocation} {
		got = append(got, details(query(t, l, Filter{Kind: kind}))...)
	}
	for _, e := range precious {
		if !slices.Contains(got, e.Detail) {
			t.Errorf("the %s event %q is gone; the admin and auth events left: %q", e.Kind, e.Detail, got)
		}
	}
}

// denied is a tool call that the grants refused.
func denied(user string) Event {
	return Event{Kind: KindToolCall, User: user, Connector: "notes", Tool: "search", Decision: DecisionDeny, Outcome: "denied"}
}

// flooded returns a log on a fresh Badger store, and the store, after
// the precious events and then flood events that call makes, with a
// buffer for all of them: none is dropped for want of room, which would
// spare the rings the test.
func flooded(t *testing.T, flood int, call func(clock *fakeClock, i int) Event) (*Log, *store.Badger) {
	t.Helper()
	b := openBadger(t, t.TempDir())
	t.Cleanup(func() { _ = b.Close() }) // after the log's, which newLog registers next
	clock := newClock()
	l := newLog(t, Options{Store: b, Now: clock.Now, Buffer: flood})
	for _, e := range precious {
		l.Record(e)
	}
	for i := range flood {
		l.Record(call(clock, i))
	}
	if n := l.Dropped(); n != 0 {
		t.Errorf("%d events dropped", n)
	}
	return l, b
}

// TestAttemptFloodKeepsAuth floods the gateway with what any identified
// caller can cause without a grant, a failed consent (a callback with a
// bogus state), by one user for a thousand windows and by many users:
// admin changes, completed consents, disconnects and revocations stay.
func TestAttemptFloodKeepsAuth(t *testing.T) {
	const flood = DefaultMax + 100
	bogus := func(user string) Event {
		return Event{Kind: KindConsentFinish, User: user, Outcome: "failed", Detail: "state already used or expired"}
	}
	tests := []struct {
		name string
		call func(clock *fakeClock, i int) Event
	}{
		{"one user, a burst a window", func(clock *fakeClock, i int) Event {
			if i%(DefaultBurst+1) == 0 {
				clock.Add(DefaultWindow)
			}
			return bogus("mallory")
		}},
		{"many users", func(_ *fakeClock, i int) Event { return bogus(fmt.Sprint("user", i)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := flooded(t, flood, tc.call)
			var got []string
			for _, kind := range []Kind{KindAdminChange, KindConsentFinish, KindDisconnect, KindRevocation} {
				got = append(got, details(query(t, l, Filter{Kind: kind, Limit: 2 * DefaultMax}))...)
			}
			for _, want := range []string{"connector added", "tools selected", "consent finish", "disconnect", "revocation"} {
				if !slices.Contains(got, want) {
					t.Errorf("%q is gone after a flood of failed consents", want)
				}
			}
		})
	}
}

// TestCallFloodKeepsAdminAndAuth records admin and auth events, then
// 10,100 refused tool calls into rings of the default 10,000 events: by
// one user at once, by one user slowly enough that the limit keeps each,
// and by 10,100 users. Every admin and auth event is still there; only
// calls gave way.
func TestCallFloodKeepsAdminAndAuth(t *testing.T) {
	const flood = DefaultMax + 100
	tests := []struct {
		name string
		call func(clock *fakeClock, i int) Event
	}{
		{"one user", func(_ *fakeClock, _ int) Event { return denied("mallory") }},
		{"one user, a burst a window", func(clock *fakeClock, i int) Event {
			if i%DefaultBurst == 0 {
				clock.Add(DefaultWindow)
			}
			return denied("mallory")
		}},
		{"many users", func(_ *fakeClock, i int) Event { return denied(fmt.Sprint("user", i)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, b := flooded(t, flood, tc.call)
			wantPrecious(t, l)
			calls := query(t, l, Filter{Kind: KindToolCall, Limit: DefaultMax})
			if len(calls) == 0 || calls[0].Kind != KindToolCall {
				t.Fatalf("no calls kept: %+v", calls)
			}
			if n := len(sequences(t, b)); n > DefaultMax+maxBatch-1+len(precious) {
				t.Errorf("the store holds %d events, more than the rings' bound", n)
			}
		})
	}
}

// TestFloodKeepsOtherUsersCalls lets mallory send 10,100 refused calls
// over ten minutes into a ring of 200 calls, after bob's allowed and
// refused ones: bob's are all still there, mallory's cost at most a
// burst and a count per window, and the counts add up to her flood.
func TestFloodKeepsOtherUsersCalls(t *testing.T) {
	const flood, windows = 10100, 11
	clock := newClock()
	l := newLog(t, Options{Max: 200, Now: clock.Now, Buffer: flood})
	var bobs []string
	for i := range 30 {
		e := Event{Kind: KindToolCall, User: "bob", Tool: fmt.Sprint("tool", i), Decision: DecisionAllow, Outcome: OutcomeOK}
		if i%3 == 0 { // refused calls, fewer than a burst
			e.Decision, e.Outcome = DecisionDeny, "denied"
		}
		e.Detail = fmt.Sprint("bob ", i)
		bobs = append(bobs, e.Detail)
		l.Record(e)
	}
	for i := range flood {
		if i%(flood/(windows-1)) == 0 {
			clock.Add(DefaultWindow)
		}
		l.Record(denied("mallory"))
	}
	clock.Add(DefaultWindow) // every window over
	got := details(query(t, l, Filter{User: "bob", Limit: 200}))
	slices.Reverse(got)
	if !slices.Equal(got, bobs) {
		t.Errorf("bob's calls after mallory's flood: %q, want %q", got, bobs)
	}
	if n := l.Dropped(); n != 0 {
		t.Errorf("%d events dropped", n)
	}
	mallory := query(t, l, Filter{User: "mallory", Limit: 200})
	kept, counted := 0, 0
	for _, e := range mallory {
		if e.Outcome == OutcomeSuppressed {
			counted += e.Count
		} else {
			kept++
		}
	}
	if len(mallory) > windows*(DefaultBurst+1) || kept+counted != flood {
		t.Errorf("mallory's flood takes %d slots (%d calls and counts of %d); want at most %d, adding up to %d",
			len(mallory), kept, counted, windows*(DefaultBurst+1), flood)
	}
}

// TestCallsBufferFullKeepsAdmin blocks the writer and fills the buffer of
// the calls: an admin change recorded then has a buffer of its own and is
// not dropped.
func TestCallsBufferFullKeepsAdmin(t *testing.T) {
	st := &blockingStore{Memory: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	l := newLog(t, Options{Store: st, Buffer: 2})
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "first"})
	<-st.entered
	for i := range 5 {
		l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: fmt.Sprint(i)})
	}
	l.Record(Event{Kind: KindAdminChange, Detail: "admin"})
	l.Record(Event{Kind: KindRevocation, Detail: "revocation"})
	if n := l.Dropped(); n != 3 {
		t.Errorf("Dropped = %d, want 3 calls", n)
	}
	close(st.release)
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"revocation", "admin", "1", "0", "first"}) {
		t.Errorf("the ring holds %q", got)
	}
}

// TestClassRetention records events of the three classes, interleaved,
// into rings of 3 on a real Badger, reopens it with rings of 2: each
// class keeps its own newest, Query answers them across classes in the
// order they were recorded, and numbering goes on after the newest.
func TestClassRetention(t *testing.T) {
	dir := t.TempDir()
	b := openBadger(t, dir)
	l, err := New(Options{Store: b, Max: 3})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{KindAdminChange, KindDisconnect, KindToolCall}
	for i := 1; i <= 15; i++ {
		l.Record(Event{Kind: kinds[i%3], Decision: DecisionAllow, Detail: fmt.Sprint(i)})
	}
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"15", "14", "13", "12", "11", "10", "9", "8", "7"}) {
		t.Errorf("rings of 3: %q", got)
	}
	if got := details(query(t, l, Filter{Kind: KindAdminChange})); !slices.Equal(got, []string{"15", "12", "9"}) {
		t.Errorf("the admin changes: %q", got)
	}
	closeAll(t, l, b)

	b = openBadger(t, dir)
	defer b.Close()
	l = newLog(t, Options{Store: b, Max: 2})
	l.Record(Event{Kind: KindRevocation, Detail: "16"})
	if got := details(query(t, l, Filter{Limit: 100})); !slices.Equal(got, []string{"16", "15", "14", "13", "12", "11"}) {
		t.Errorf("after reopening with rings of 2: %q", got)
	}
	wantKept(t, b, 2, seq(11, 16))
}

// TestOlderRingMoves opens a Log on a Badger that holds the one ring of
// an older version, an undecodable event included: each event moves into
// its class's ring under its own number, the undecodable one too (Query
// skips it, as before), none is left where it was, and numbering goes on
// after the newest.
func TestOlderRingMoves(t *testing.T) {
	dir := t.TempDir()
	b := openBadger(t, dir)
	ctx := context.Background()
	older := map[uint64]string{
		3: `{"time":"2026-01-01T00:00:03Z","kind":"admin_change","detail":"3"}`,
		4: `{"time":"2026-01-01T00:00:04Z","kind":"tool_call","user":"bob","detail":"4"}`,
		5: `{"time":"2026-01-01T00:00:05Z","kind":"revocation","detail":"5"}`,
		6: `{not json`,
		7: `{"time":"2026-01-01T00:00:07Z","kind":"consent_start","detail":"7"}`,
	}
	for n, v := range older {
		if err := b.Put(ctx, legacyKey(n), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	l := newLog(t, Options{Store: b})
	l.Record(Event{Kind: KindAdminChange, Detail: "8"})
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"8", "7", "5", "4", "3"}) {
		t.Errorf("Query = %q", got)
	}
	keys, err := b.List(ctx, Prefix)
	if err != nil {
		t.Fatal(err)
	}
	one := func(c class, n uint64) string { return pageKey(c, page{last: n, n: 1}) }
	want := []string{one(classAdmin, 3), one(classAdmin, 8), one(classAuthAttempts, 7), one(classAuth, 5), one(classCallAttempts, 4), one(classCalls, 6)}
	if !slices.Equal(keys, want) {
		t.Errorf("the store holds\n%q\nwant\n%q", keys, want)
	}
	if v, err := b.Get(ctx, one(classCalls, 6)); err != nil || string(v) != older[6] {
		t.Errorf("the undecodable event became %q, %v", v, err)
	}
}

// TestOlderRingMovesInBatches moves an older ring of 300 events, more
// than one batch, into rings of 100: the calls keep the newest 100.
func TestOlderRingMovesInBatches(t *testing.T) {
	st := store.NewMemory()
	ctx := context.Background()
	for n := uint64(1); n <= 300; n++ {
		if err := st.Put(ctx, legacyKey(n), []byte(fmt.Sprintf(`{"kind":"tool_call","detail":"%d"}`, n)), 0); err != nil {
			t.Fatal(err)
		}
	}
	l := newLog(t, Options{Store: st, Max: 100})
	got := query(t, l, Filter{Limit: 300})
	if len(got) != 100 || got[0].Detail != "300" || got[99].Detail != "201" {
		t.Errorf("Query answered %d events, from %q to %q", len(got), got[0].Detail, got[len(got)-1].Detail)
	}
	if keys := sequences(t, st); !slices.Equal(keys, seq(201, 300)) {
		t.Errorf("the store holds %v", keys)
	}
}

// TestKeys checks that the keys of the classes and of the older ring are
// told apart, that an older version's key of one event reads as a page
// of one, and that no other key passes for a page's.
func TestKeys(t *testing.T) {
	for c := range numClasses {
		k := pageKey(c, page{last: 42, n: 7})
		if got, p, ok := parseKey(k); !ok || got != c || p != (page{42, 7, false}) || !strings.HasPrefix(k, Prefix) {
			t.Errorf("parseKey(%q) = %v, %+v, %v", k, got, p, ok)
		}
		older := fmt.Sprintf("%s%s/%020d", Prefix, c, 42)
		if got, p, ok := parseKey(older); !ok || got != c || p != (page{42, 1, true}) {
			t.Errorf("parseKey(%q) = %v, %+v, %v", older, got, p, ok)
		}
		for _, k := range []string{k, older} {
			if _, ok := legacySequence(k); ok {
				t.Errorf("%q passes for a key of the older ring", k)
			}
		}
	}
	if n, ok := legacySequence(legacyKey(7)); !ok || n != 7 {
		t.Errorf("legacySequence(%q) = %d, %v", legacyKey(7), n, ok)
	}
	for _, k := range []string{legacyKey(7), Prefix + "other/00000000000000000001", Prefix + "calls/1", Prefix + "calls/0000000000000000000x",
		"audit/calls/00000000000000000001", Prefix + "calls/00000000000000000001-", Prefix + "calls/00000000000000000001-0",
		Prefix + "calls/00000000000000000001-01", Prefix + "calls/00000000000000000001-x", Prefix + "calls/00000000000000000001--1"} {
		if _, _, ok := parseKey(k); ok {
			t.Errorf("%q passes for a page's key", k)
		}
	}
}

// TestDriftFloodKeepsAdmin: an upstream that changes a pinned tool's
// definition over and over, one new definition per list fetch, causes a
// drift event each time. They go to a class of their own, limited per
// connector as attempts are per user: the admin changes stay, the flood
// costs its class a burst and a summary a window, and another connector's
// drift in the same window is still kept one by one.
func TestDriftFloodKeepsAdmin(t *testing.T) {
	const flood = DefaultMax + 100
	drift := func(connector string, i int) Event {
		return Event{Kind: KindDrift, Connector: connector, Tool: "delete_everything", Outcome: "hidden",
			Detail: fmt.Sprint("tool delete_everything changed upstream (description) ", i)}
	}
	l, _ := flooded(t, flood, func(clock *fakeClock, i int) Event {
		if i%(10*DefaultBurst) == 0 {
			clock.Add(DefaultWindow)
		}
		return drift("rogue", i)
	})
	wantPrecious(t, l)
	l.Record(drift("wiki", 0))
	got := query(t, l, Filter{Kind: KindDrift, Limit: 2 * DefaultMax})
	kept, summaries, wiki := 0, 0, 0
	for _, e := range got {
		switch {
		case e.Connector == "wiki":
			wiki++
		case e.Outcome == OutcomeSuppressed:
			summaries++
			if e.User != "" || !strings.Contains(e.Detail, "of this connector") {
				t.Errorf("a summary of drift: %+v", e)
			}
		default:
			kept++
		}
	}
	windows := flood / (10 * DefaultBurst)
	if wiki != 1 || kept > (windows+1)*DefaultBurst || summaries < windows-1 {
		t.Errorf("drift kept one by one %d, summaries %d, of wiki %d; want at most %d, at least %d, and 1",
			kept, summaries, wiki, (windows+1)*DefaultBurst, windows-1)
	}
}
