package audit

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of the limit on attempts.
const (
	// DefaultBurst is how many attempts of one kind by one user a window
	// keeps one by one.
	DefaultBurst = 10
	// DefaultWindow is how long a window of attempts lasts.
	DefaultWindow = time.Minute
)

// maxTracked bounds the windows a limiter keeps open at once, so that a
// caller who can mint identities cannot make it grow without end: beyond
// it, the oldest window closes early.
const maxTracked = 10000

// limitKey is whose attempts a window counts: one user's, of one kind;
// for drift, which an upstream causes, one connector's.
type limitKey struct {
	kind      Kind
	user      string
	connector string // for drift only
}

// keyOf is the window that counts e.
func keyOf(e Event) limitKey {
	if e.Kind == KindDrift {
		return limitKey{kind: e.Kind, connector: e.Connector}
	}
	return limitKey{kind: e.Kind, user: e.User}
}

// tally is one window of one key's attempts.
type tally struct {
	start       time.Time
	seen        int       // attempts in the window
	suppressed  int       // of them, those beyond the burst
	first, last time.Time // when the first and the last suppressed one came
	connector   string    // of the suppressed ones; "" when they differ
}

// limiter keeps the ring from filling with one user's attempts (see
// attempt). A window opens at a user's first attempt of a kind and lasts
// window; its first burst attempts are kept one by one, and the rest are
// only counted, then recorded as one event with OutcomeSuppressed when
// the window closes. Whatever its rate, one user's flood of one kind thus
// costs the ring at most burst+1 slots per window, and the count keeps
// how big it was. It is safe for concurrent use.
type limiter struct {
	burst   int
	window  time.Duration
	tracked int // the most windows open at once

	mu    sync.Mutex
	open  map[limitKey]*tally
	order []limitKey // the keys of open, oldest window first
}

// newLimiter returns a limiter of burst attempts per window.
func newLimiter(burst int, window time.Duration) *limiter {
	return &limiter{burst: burst, window: window, tracked: maxTracked, open: map[limitKey]*tally{}}
}

// admit reports whether the ring keeps e one by one, and returns the
// events that stand for the windows closed by now, to be recorded first.
func (lm *limiter) admit(e Event, now time.Time) (keep bool, closed []Event) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	closed = lm.expire(now, false)
	if !attempt(e) {
		return true, closed
	}
	k := keyOf(e)
	t := lm.open[k]
	if t == nil {
		if len(lm.order) >= lm.tracked {
			closed = lm.closeOldest(now, closed)
		}
		t = &tally{start: now}
		lm.open[k] = t
		lm.order = append(lm.order, k)
	}
	t.seen++
	if t.seen <= lm.burst {
		return true, closed
	}
	t.suppress(e, now)
	return false, closed
}

// due returns the events that stand for the windows closed by now.
func (lm *limiter) due(now time.Time) []Event {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.expire(now, false)
}

// drain closes every window, over or not, and returns the events that
// stand for them: what a closing Log must record not to lose a count.
func (lm *limiter) drain(now time.Time) []Event {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.expire(now, true)
}

// expire closes the windows over by now (every window with all), oldest
// first. Windows all last as long, so they end in the order they opened.
func (lm *limiter) expire(now time.Time, all bool) []Event {
	var closed []Event
	for len(lm.order) > 0 && (all || !now.Before(lm.open[lm.order[0]].start.Add(lm.window))) {
		closed = lm.closeOldest(now, closed)
	}
	return closed
}

// closeOldest closes the oldest window, adding to closed the event that
// stands for its suppressed attempts, if it had any.
func (lm *limiter) closeOldest(now time.Time, closed []Event) []Event {
	k := lm.order[0]
	lm.order = lm.order[1:]
	t := lm.open[k]
	delete(lm.open, k)
	if t.suppressed == 0 {
		return closed
	}
	return append(closed, t.summary(k, now))
}

// suppress counts e, an attempt beyond the burst.
func (t *tally) suppress(e Event, now time.Time) {
	switch {
	case t.suppressed == 0:
		t.first, t.connector = now, e.Connector
	case t.connector != e.Connector:
		t.connector = ""
	}
	t.suppressed++
	t.last = now
}

// summary returns the event that stands for t's suppressed attempts. Its
// Time is now, when it is recorded, so that the ring stays in time order;
// Detail says when the attempts came.
func (t *tally) summary(k limitKey, now time.Time) Event {
	whose := "by this user"
	if k.kind == KindDrift {
		whose = "of this connector"
	}
	return Event{Time: now, Kind: k.kind, User: k.user, Connector: t.connector, Outcome: OutcomeSuppressed,
		Count: t.suppressed, Detail: fmt.Sprintf("%d more %s events %s from %s to %s, each logged but not kept one by one",
			t.suppressed, k.kind, whose, t.first.UTC().Format(time.RFC3339), t.last.UTC().Format(time.RFC3339))}
}
