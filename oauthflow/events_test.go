package oauthflow

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// events is an OnEvent hook that keeps what it is told.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// take returns the events since the last take.
func (e *events) take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.all
	e.all = nil
	return out
}

// expect fails unless got is want, Detail compared only where want has one.
func expect(t *testing.T, step string, got []Event, want ...Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: events %+v, want %+v", step, got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if w.Detail == "" {
			g.Detail = ""
		}
		if g != w {
			t.Errorf("%s: event %d = %+v, want %+v", step, i, got[i], want[i])
		}
		assertNoCanary(t, step, got[i].Detail)
	}
}

// newEventHarness is a harness whose Manager reports to ev.
func newEventHarness(t *testing.T, ev *events) *harness {
	return newHarness(t, func(h *harness, opts *Options, cfgs *[]Config) { opts.OnEvent = ev.add })
}

// TestEvents walks a connection through its life and checks what OnEvent
// is told at each step: consent, a refresh that works, one the server
// refuses, one that fails for a while, a failed callback, a disconnect
// and its revocation, and a revocation retried later.
func TestEvents(t *testing.T) {
	ev := new(events)
	h := newEventHarness(t, ev)
	ctx := context.Background()

	h.connect(h.as, "notion", "alice")
	expect(t, "consent", ev.take(),
		Event{Kind: EventConsentStart, Connector: "notion", User: "alice", Outcome: OutcomeOK},
		Event{Kind: EventConsentFinish, Connector: "notion", User: "alice", Outcome: OutcomeOK})

	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	expect(t, "a fresh token", ev.take())

	h.clock.Add(2 * time.Hour)
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	expect(t, "a refresh", ev.take(), Event{Kind: EventRefresh, Connector: "notion", User: "alice", Outcome: OutcomeOK})

	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, _ request) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
	})
	h.clock.Add(2 * time.Hour)
	if _, err := h.token("notion", "alice"); err == nil {
		t.Fatal("a refresh against a server that is down worked")
	}
	expect(t, "a refresh while the server is down", ev.take(),
		Event{Kind: EventRefresh, Connector: "notion", User: "alice", Outcome: OutcomeFailed, Stopped: true})

	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, _ request) bool {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return true
		}
	})
	h.clock.Add(refreshBackoff)
	if _, err := h.token("notion", "alice"); err == nil {
		t.Fatal("a refused refresh worked")
	}
	expect(t, "a refused refresh", ev.take(), Event{Kind: EventRefresh, Connector: "notion", User: "alice",
		Outcome: OutcomeInvalidGrant, Detail: "the authorization server refused the refresh token (invalid_grant)"})
	h.as.set(func(a *fakeAS) { a.onToken = nil })

	if _, err := h.m.Callback(ctx, url.Values{"state": {"forged"}, "code": {"x"}}, "alice"); err == nil {
		t.Fatal("a forged callback worked")
	}
	expect(t, "a forged callback", ev.take(),
		Event{Kind: EventConsentFinish, User: "alice", Outcome: OutcomeError, Detail: "invalid_request: invalid state"})

	h.connect(h.as, "notion", "alice")
	ev.take()
	if _, err := h.m.Disconnect(ctx, "notion", "alice", "done with it"); err != nil {
		t.Fatal(err)
	}
	expect(t, "a disconnect", ev.take(),
		Event{Kind: EventDisconnect, Connector: "notion", User: "alice", Outcome: OutcomeOK, Detail: "done with it"},
		Event{Kind: EventRevocation, Connector: "notion", User: "alice", Outcome: OutcomeRevoked,
			Detail: "refresh token revoked; access token revoked"})

	// A revocation the server cannot take now is retried later.
	h.connect(h.as, "notion", "alice")
	ev.take()
	h.as.set(func(a *fakeAS) {
		a.onRevoke = func(w http.ResponseWriter, _ request) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
	})
	if _, err := h.m.Disconnect(ctx, "notion", "alice", ""); err != nil {
		t.Fatal(err)
	}
	got := ev.take()
	expect(t, "a disconnect the server cannot take", got,
		Event{Kind: EventDisconnect, Connector: "notion", User: "alice", Outcome: OutcomeOK, Detail: "disconnected"},
		Event{Kind: EventRevocation, Connector: "notion", User: "alice", Outcome: OutcomeWillRetry, Detail: got[1].Detail})
	h.as.set(func(a *fakeAS) { a.onRevoke = nil })
	h.clock.Add(maxRevokeBackoff)
	if n, err := h.m.RetryRevocations(ctx); n != 1 || err != nil {
		t.Fatalf("RetryRevocations = %d, %v", n, err)
	}
	expect(t, "the retry", ev.take(), Event{Kind: EventRevocation, Connector: "notion", Outcome: OutcomeRevoked,
		Detail: "refresh token revoked; access token revoked"})
}

// TestEventConsentStartFails checks that a consent that cannot start is
// reported with its reason.
func TestEventConsentStartFails(t *testing.T) {
	ev := new(events)
	h := newEventHarness(t, ev)
	if _, err := h.m.Start(context.Background(), "notion", "alice", "https://elsewhere.test/"); err == nil {
		t.Fatal("Start to a foreign redirect worked")
	}
	got := ev.take()
	if len(got) != 1 || got[0].Kind != EventConsentStart || got[0].Outcome != OutcomeError || got[0].Detail != ErrBadRedirect.Error() {
		t.Errorf("events = %+v", got)
	}
}

// TestStates counts connections by state from the store: one per user of
// a per-user connector, the grants of connectors the Manager does not run
// left out.
func TestStates(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.connect(h.as, "notion", "alice")
	h.connect(h.as, "notion", "bob")
	h.connect(h.as, "notion", "carol")
	if _, err := h.m.Disconnect(ctx, "notion", "bob", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Start(ctx, "notion", "dave", ""); err != nil {
		t.Fatal(err)
	}
	if err := putJSON(ctx, h.st, grantKey("other", "erin"), &grantWire{Connection: connectors.Connection{State: connectors.StateActive}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Put(ctx, grantKey("notion", "frank"), []byte("not json"), 0); err != nil {
		t.Fatal(err)
	}
	got, err := h.m.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[connectors.State]int{connectors.StateActive: 2, connectors.StateDisconnected: 1,
		connectors.StatePending: 1, connectors.StateError: 1}
	if len(got) != len(want) {
		t.Fatalf("States = %v, want %v", got, want)
	}
	for s, n := range want {
		if got[s] != n {
			t.Errorf("States = %v, want %v", got, want)
		}
	}
}
