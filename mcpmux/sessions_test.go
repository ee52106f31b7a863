package mcpmux

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/liveheap"
)

// sessionClock is a clock a test moves by hand.
type sessionClock struct{ t time.Time }

func (c *sessionClock) now() time.Time          { return c.t }
func (c *sessionClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// smallSessions returns a store with the given limits on a test clock.
func smallSessions(perCaller, maxAll int) (*Sessions, *sessionClock) {
	clock := &sessionClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := NewSessions()
	s.PerCaller, s.Max, s.now = perCaller, maxAll, clock.now
	return s, clock
}

// mustOpen opens a session for user, a second after the last event.
func mustOpen(t *testing.T, s *Sessions, clock *sessionClock, user string) *session {
	t.Helper()
	clock.advance(time.Second)
	ss, err := openFor(s, user)
	if err != nil {
		t.Fatalf("open for %s: %v", user, err)
	}
	return ss
}

// openFor opens a session with a random id for user.
func openFor(s *Sessions, user string) (*session, *sessionLimitError) {
	return s.open(newSession(randomSessionID(), grants.Caller{ID: user}, "", "2025-11-25"))
}

// alive reports whether ss still answers its owner.
func alive(s *Sessions, ss *session) bool {
	got, ok := s.get(ss.id, ss.caller, ss.scope)
	return ok && got == ss
}

// TestSessionLimits checks who makes way when sessions run out: a caller
// at its own limit gives up its own least recently used session, never
// another caller's; past the gateway's limit a newcomer is refused with
// an error naming the limit; sessions past Idle make way for anyone.
func TestSessionLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *Sessions, clock *sessionClock)
	}{
		{"gateway full: alice survives, a newcomer is refused", func(t *testing.T, s *Sessions, clock *sessionClock) {
			alice := mustOpen(t, s, clock, "alice")
			for _, user := range []string{"bob", "bob", "carol"} {
				mustOpen(t, s, clock, user)
			}
			clock.advance(time.Second)
			ss, err := openFor(s, "mallory")
			if ss != nil || err == nil || !strings.Contains(err.Error(), "limit of 4 open sessions") {
				t.Fatalf("a fifth session: %v, %v", ss, err)
			}
			if err.retryAfter != maxRetryAfter {
				t.Errorf("retry after %v, want %v", err.retryAfter, maxRetryAfter)
			}
			if !alive(s, alice) {
				t.Error("alice's session was evicted by other callers")
			}
		}},
		{"caller at its limit evicts its own oldest", func(t *testing.T, s *Sessions, clock *sessionClock) {
			alice := mustOpen(t, s, clock, "alice")
			b1, b2 := mustOpen(t, s, clock, "bob"), mustOpen(t, s, clock, "bob")
			carol := mustOpen(t, s, clock, "carol")
			clock.advance(time.Second)
			alive(s, b1) // b2 is now bob's least recently used
			b3 := mustOpen(t, s, clock, "bob")
			for _, c := range []struct {
				ss   *session
				want bool
			}{{alice, true}, {b1, true}, {b2, false}, {carol, true}, {b3, true}} {
				if got := alive(s, c.ss); got != c.want {
					t.Errorf("%s's session %s: alive %v, want %v", c.ss.caller.ID, c.ss.id, got, c.want)
				}
			}
		}},
		{"another caller's id does not keep a session fresh", func(t *testing.T, s *Sessions, clock *sessionClock) {
			a1, a2 := mustOpen(t, s, clock, "alice"), mustOpen(t, s, clock, "alice")
			clock.advance(time.Second)
			if _, ok := s.get(a1.id, grants.Caller{ID: "eve"}, ""); ok {
				t.Fatal("eve got alice's session")
			}
			mustOpen(t, s, clock, "alice")
			if alive(s, a1) || !alive(s, a2) {
				t.Error("eve's try refreshed alice's oldest session")
			}
		}},
		{"idle sessions make way", func(t *testing.T, s *Sessions, clock *sessionClock) {
			old := mustOpen(t, s, clock, "bob")
			clock.advance(s.Idle / 2)
			rest := []*session{mustOpen(t, s, clock, "carol"), mustOpen(t, s, clock, "carol"), mustOpen(t, s, clock, "dave")}
			clock.advance(time.Second)
			_, err := openFor(s, "erin")
			if err == nil {
				t.Fatal("a fifth session was opened")
			}
			if want := s.Idle/2 - 4*time.Second; err.retryAfter != min(want, maxRetryAfter) {
				t.Errorf("retry after %v", err.retryAfter)
			}
			clock.advance(s.Idle/2 - 3*time.Second)
			mustOpen(t, s, clock, "erin")
			if alive(s, old) {
				t.Error("the idle session survived")
			}
			for _, ss := range rest {
				if !alive(s, ss) {
					t.Errorf("%s's session was dropped", ss.caller.ID)
				}
			}
		}},
		{"retry after the oldest idles out", func(t *testing.T, s *Sessions, clock *sessionClock) {
			mustOpen(t, s, clock, "bob")
			clock.advance(s.Idle - 10*time.Second)
			for _, user := range []string{"carol", "carol", "dave"} {
				mustOpen(t, s, clock, user)
			}
			_, err := openFor(s, "erin")
			if err == nil || err.retryAfter != 7*time.Second {
				t.Fatalf("refusal %v", err)
			}
		}},
		{"a closed session frees its place", func(t *testing.T, s *Sessions, clock *sessionClock) {
			a := mustOpen(t, s, clock, "alice")
			for _, user := range []string{"bob", "bob", "carol"} {
				mustOpen(t, s, clock, user)
			}
			s.close(a.id)
			mustOpen(t, s, clock, "dave")
			if alive(s, a) {
				t.Error("a closed session answers")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := smallSessions(2, 4)
			tc.run(t, s, clock)
		})
	}
}

// TestRefuseSession checks the answer to an initialize the gateway has no
// room for: 503 (a 4xx would send MCP clients to the old HTTP+SSE
// transport), a Retry-After in whole seconds, and a JSON-RPC error naming
// the limit.
func TestRefuseSession(t *testing.T) {
	w := httptest.NewRecorder()
	refuseSession(w, []byte(`7`), &sessionLimitError{max: 3, retryAfter: 1500 * time.Millisecond})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
		t.Errorf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	want := `{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"the gateway holds its limit of 3 open sessions`
	if body := w.Body.String(); !strings.HasPrefix(body, want) {
		t.Errorf("body %s", body)
	}
}

// BenchmarkSessionOpen opens sessions in a gateway that already holds
// DefaultMaxSessions-1 of them, for callers at their own limit: each open
// must cost the same whatever the number of sessions.
func BenchmarkSessionOpen(b *testing.B) {
	s := NewSessions()
	const callers = (DefaultMaxSessions - 1) / DefaultSessionsPerCaller
	for i := range callers * DefaultSessionsPerCaller {
		if _, err := openFor(s, fmt.Sprint("user", i%callers)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := openFor(s, fmt.Sprint("user", i%callers)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIdleSessionBytes bounds what an idle session holds in the store: a
// gateway holds thousands (issue 13: 1,000 idle sessions within 64 MiB of
// RSS, where each live byte costs about two). The ids, caller names and
// the store's own maps and lists count; the bound leaves room for them.
// 674 bytes with the tag held in hex and the last use a time.Time, 612
// without.
func TestIdleSessionBytes(t *testing.T) {
	const n = 5000 // enough that other tests' stray allocations weigh little
	ids := make([]string, n)
	callers := make([]grants.Caller, n)
	for i := range n {
		ids[i], callers[i] = randomSessionID(), grants.Caller{ID: fmt.Sprintf("caller%04d", i)}
	}
	s := NewSessions()
	before := liveheap.Bytes()
	for i := range n {
		if _, err := s.open(newSession(ids[i], callers[i], "", "2025-11-25")); err != nil {
			t.Fatal(err)
		}
	}
	per := (liveheap.Bytes() - before) / n
	t.Logf("an idle session holds %d bytes", per)
	if per > 640 {
		t.Errorf("an idle session holds %d bytes, want at most 640", per)
	}
	runtime.KeepAlive(s)
}

// TestEndLocalNotATag: a notice whose tag is not one sessionTag writes
// (too short, too long, not hex, in capitals) ends no session and does
// not fail; the session's own tag ends it.
func TestEndLocalNotATag(t *testing.T) {
	s, clock := smallSessions(4, 8)
	ss := mustOpen(t, s, clock, "alice")
	tag := ss.tag()
	for _, bad := range []string{"", "ab", tag[:63], tag + "00", strings.Repeat(tag, 9), strings.ToUpper(tag), "zz" + tag[2:]} {
		s.EndLocal(bad)
		if !alive(s, ss) {
			t.Fatalf("EndLocal(%.20q...) ended the session", bad)
		}
	}
	s.EndLocal(tag)
	if alive(s, ss) || len(s.byTag) != 0 {
		t.Errorf("after EndLocal of its tag: alive %v, %d tags held", alive(s, ss), len(s.byTag))
	}
}
