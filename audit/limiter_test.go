package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// suppressed returns the events of events that stand for suppressed ones,
// by kind.
func suppressed(events []Event) map[Kind]Event {
	out := map[Kind]Event{}
	for _, e := range events {
		if e.Outcome == OutcomeSuppressed {
			out[e.Kind] = e
		}
	}
	return out
}

// TestAttemptWindow runs windows of attempts on an injected clock, with a
// burst of 3: beyond it, mallory's refused calls, consent starts and
// failed consents are logged but only counted, each kind apart, until
// the window closes a minute after its first attempt; what took effect
// (her allowed calls, a completed consent, admin changes) and other
// users' attempts are kept one by one; and a new window keeps again.
func TestAttemptWindow(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	clock := newClock()
	t0 := clock.Now()
	l := newLog(t, Options{Logger: zap.New(core), Burst: 3, Window: time.Minute, Now: clock.Now})
	refused := func(connector string) Event {
		e := denied("mallory")
		e.Connector = connector
		return e
	}
	for i := range 5 {
		l.Record(refused("a"))
		l.Record(Event{Kind: KindConsentStart, User: "mallory", Connector: "x", Outcome: OutcomeOK})
		l.Record(Event{Kind: KindConsentFinish, User: "mallory", Connector: "x", Outcome: "error"})
		l.Record(Event{Kind: KindConsentFinish, User: "mallory", Connector: "x", Outcome: OutcomeOK})
		l.Record(Event{Kind: KindAdminChange, User: "mallory", Outcome: OutcomeOK})
		if i < 3 { // a burst, no more
			l.Record(denied("bob"))
		}
	}
	clock.Add(30 * time.Second)
	for range 2 {
		l.Record(refused("b"))
		l.Record(Event{Kind: KindToolCall, User: "mallory", Decision: DecisionAllow, Outcome: OutcomeOK})
	}

	clock.Add(29 * time.Second) // a second before the windows close
	count := func(f Filter, kept func(Event) bool) int {
		n := 0
		for _, e := range query(t, l, f) {
			if kept(e) {
				n++
			}
		}
		return n
	}
	all := func(Event) bool { return true }
	refusedCall := func(e Event) bool { return e.Decision == DecisionDeny }
	for _, c := range []struct {
		what string
		f    Filter
		kept func(Event) bool
		want int
	}{
		{"mallory's refused calls", Filter{User: "mallory", Kind: KindToolCall}, refusedCall, 3},
		{"mallory's allowed calls", Filter{User: "mallory", Kind: KindToolCall}, func(e Event) bool { return e.Decision == DecisionAllow }, 2},
		{"mallory's consent starts", Filter{User: "mallory", Kind: KindConsentStart}, all, 3},
		{"mallory's consent finishes", Filter{User: "mallory", Kind: KindConsentFinish}, all, 3 + 5},
		{"the admin changes", Filter{Kind: KindAdminChange}, all, 5},
		{"bob's refused calls", Filter{User: "bob"}, all, 3},
	} {
		if got := count(c.f, c.kept); got != c.want {
			t.Errorf("before the window closes: %d of %s, want %d", got, c.what, c.want)
		}
	}
	if s := suppressed(query(t, l, Filter{Limit: 100})); len(s) != 0 {
		t.Errorf("counts before the window closes: %+v", s)
	}

	clock.Add(time.Second)
	events := query(t, l, Filter{Limit: 100})
	s := suppressed(events)
	wantCount := func(kind Kind, n int, connector string) {
		t.Helper()
		e, ok := s[kind]
		switch {
		case !ok:
			t.Errorf("no count of %s events: %+v", kind, events)
		case e.Count != n || e.User != "mallory" || e.Connector != connector || !e.Time.Equal(clock.Now()):
			t.Errorf("the count of %s events: %+v; want %d, by mallory on %q, now", kind, e, n, connector)
		case !strings.HasPrefix(e.Detail, fmt.Sprint(n, " more ", kind, " events")):
			t.Errorf("the count of %s events says %q", kind, e.Detail)
		}
	}
	wantCount(KindToolCall, 4, "") // on a and b
	wantCount(KindConsentStart, 2, "x")
	wantCount(KindConsentFinish, 2, "x")
	if len(s) != 3 || events[0].Outcome != OutcomeSuppressed {
		t.Errorf("%d counts, the newest event %+v", len(s), events[0])
	}
	if e := s[KindToolCall]; !strings.Contains(e.Detail, t0.Format(time.RFC3339)) || !strings.Contains(e.Detail, t0.Add(30*time.Second).Format(time.RFC3339)) {
		t.Errorf("the count of refused calls does not say when they came: %q", e.Detail)
	}

	// A new window keeps again.
	l.Record(refused("a"))
	if got := query(t, l, Filter{Limit: 1})[0]; got.Outcome != "denied" || got.User != "mallory" {
		t.Errorf("the first refused call of a new window: %+v", got)
	}

	// Every event has its line, and each count one more.
	if n := logs.FilterMessage("tool call").Len(); n != 5+2+2+3+1+1 {
		t.Errorf("%d tool call lines", n)
	}
	counted := logs.FilterField(zap.String("outcome", OutcomeSuppressed)).All()
	if len(counted) != 3 || counted[0].ContextMap()["count"] == nil {
		t.Errorf("the lines of the counts: %+v", counted)
	}
}

// TestCloseRecordsOpenWindows closes a Log while a window of attempts is
// open: its count is in the store when a Log opens there again.
func TestCloseRecordsOpenWindows(t *testing.T) {
	dir := t.TempDir()
	b := openBadger(t, dir)
	l, err := New(Options{Store: b, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		l.Record(denied("mallory"))
	}
	closeAll(t, l, b)
	b = openBadger(t, dir)
	defer b.Close()
	got := query(t, newLog(t, Options{Store: b}), Filter{})
	if len(got) != 2 || got[0].Outcome != OutcomeSuppressed || got[0].Count != 4 || got[1].Outcome != "denied" {
		t.Errorf("after closing in a window: %+v", got)
	}
}

// TestLimiterBounded lets a limiter that follows 3 windows at most see
// the attempts of 4 users: it never holds more than 3, the oldest window
// closes early to make room, with its count, and no attempt goes
// uncounted.
func TestLimiterBounded(t *testing.T) {
	lm := newLimiter(1, time.Minute)
	lm.tracked = 3
	now := newClock().Now()
	var closed []Event
	kept := 0
	for u := range 4 {
		for range 3 {
			keep, c := lm.admit(denied(fmt.Sprint("user", u)), now)
			closed = append(closed, c...)
			if keep {
				kept++
			}
			if len(lm.open) > 3 || len(lm.order) != len(lm.open) {
				t.Fatalf("%d windows open, %d in order", len(lm.open), len(lm.order))
			}
		}
	}
	if len(closed) != 1 || closed[0].User != "user0" || closed[0].Count != 2 {
		t.Errorf("closed early: %+v", closed)
	}
	closed = append(closed, lm.drain(now)...)
	total := kept
	var users []string
	for _, e := range closed {
		total += e.Count
		users = append(users, e.User)
	}
	if total != 12 || !slices.Equal(users, []string{"user0", "user1", "user2", "user3"}) || len(lm.open) != 0 {
		t.Errorf("%d attempts accounted for, counts of %q, %d windows left", total, users, len(lm.open))
	}
}

// TestAttempt checks which events are attempts.
func TestAttempt(t *testing.T) {
	tests := []struct {
		e    Event
		want bool
	}{
		{Event{Kind: KindToolCall, Decision: DecisionDeny}, true},
		{Event{Kind: KindToolCall}, true}, // ended before the grants judged it
		{Event{Kind: KindToolCall, Decision: DecisionAllow, Outcome: "tool_error"}, false},
		{Event{Kind: KindConsentStart, Outcome: OutcomeOK}, true},
		{Event{Kind: KindConsentFinish, Outcome: "error"}, true},
		{Event{Kind: KindConsentFinish, Outcome: OutcomeOK}, false},
		{Event{Kind: KindRefreshFailure}, true},
		{Event{Kind: KindDisconnect}, false},
		{Event{Kind: KindRevocation, Outcome: "failed"}, false},
		{Event{Kind: KindAdminChange}, false},
	}
	for _, tc := range tests {
		if got := attempt(tc.e); got != tc.want {
			t.Errorf("attempt(%+v) = %v", tc.e, got)
		}
	}
}
