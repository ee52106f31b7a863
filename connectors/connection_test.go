package connectors

import (
	"strings"
	"testing"
	"time"
)

func TestConnectionTransitions(t *testing.T) {
	all := []State{StateNone, StatePending, StateActive, StateReauthRequired, StateExpired, StateError, StateMisconfigured, StateDisconnected}
	// want[event][from] is the state reached; a missing entry means the
	// event cannot happen there.
	want := map[Event]map[State]State{
		EventStart: {
			StateNone: StatePending, StatePending: StatePending, StateActive: StateActive,
			StateReauthRequired: StatePending, StateExpired: StatePending, StateError: StatePending,
			StateMisconfigured: StatePending, StateDisconnected: StatePending,
		},
		EventGrant:        {StatePending: StateActive, StateActive: StateActive},
		EventRefresh:      {StateActive: StateActive, StateExpired: StateActive},
		EventExpire:       {StateActive: StateExpired},
		EventInvalidGrant: {StateActive: StateReauthRequired, StateExpired: StateReauthRequired},
		// A refresh refused with another error (invalid_request…), or
		// answered with a malformed token response: broken.
		EventFail: {
			StatePending: StateError, StateActive: StateError, StateExpired: StateError,
			StateReauthRequired: StateError,
		},
		// A provider that is down keeps the tokens, to retry: expired.
		EventUnreachable: {StateActive: StateExpired, StateExpired: StateExpired},
		// No refresh token again, or the client refused at a refresh
		// (invalid_client, unauthorized_client): only an admin can help.
		EventMisconfigure: {StateActive: StateMisconfigured, StateExpired: StateMisconfigured},
		EventDisconnect: {
			StateNone: StateDisconnected, StatePending: StateDisconnected, StateActive: StateDisconnected,
			StateReauthRequired: StateDisconnected, StateExpired: StateDisconnected,
			StateError: StateDisconnected, StateMisconfigured: StateDisconnected, StateDisconnected: StateDisconnected,
		},
	}
	for event, row := range want {
		for _, from := range all {
			got, err := from.Next(event)
			to, allowed := row[from]
			switch {
			case allowed && err != nil:
				t.Errorf("%s from %q: %v", event, from, err)
			case allowed && got != to:
				t.Errorf("%s from %q = %q, want %q", event, from, got, to)
			case !allowed && err == nil:
				t.Errorf("%s from %q = %q, want an error", event, from, got)
			case !allowed && (got != from || !strings.Contains(err.Error(), string(event))):
				t.Errorf("%s from %q: got %q, %v; want the state kept and the event named", event, from, got, err)
			}
		}
	}
	if _, err := StateActive.Next("explode"); err == nil {
		t.Error("an unknown event was accepted")
	}
}

func TestConnectionStatus(t *testing.T) {
	for state, want := range map[State]Status{
		StateNone: StatusNeedsAuth, StatePending: StatusNeedsAuth, StateActive: StatusReady,
		StateReauthRequired: StatusNeedsAuth, StateExpired: StatusNeedsAuth,
		StateError: StatusMisconfigured, StateMisconfigured: StatusMisconfigured, StateDisconnected: StatusNeedsAuth,
	} {
		if got := (Connection{State: state}).Status(); got != want {
			t.Errorf("status of %q = %q, want %q", state, got, want)
		}
	}
	// Expired because the provider could not be reached: the tokens are
	// kept and retried, so no consent is asked for.
	if got := (Connection{State: StateExpired, Retrying: true}).Status(); got != StatusError {
		t.Errorf("status of an expired connection that is retried = %q, want %q", got, StatusError)
	}
}

// TestConnectionApply: an event moves the connection, with its reason and
// the time it entered a new state; only EventUnreachable marks it
// retrying, and any other event clears the mark. An event that cannot
// happen leaves the connection as it was.
func TestConnectionApply(t *testing.T) {
	t0, t1, t2 := time.Unix(100, 0), time.Unix(200, 0), time.Unix(300, 0)
	c := Connection{State: StateActive, Since: t0}
	if err := c.Apply(EventUnreachable, "down", t1); err != nil || c != (Connection{State: StateExpired, Reason: "down", Since: t1, Retrying: true}) {
		t.Fatalf("unreachable: %+v, %v", c, err)
	}
	if err := c.Apply(EventUnreachable, "still down", t2); err != nil || c.Since != t1 || !c.Retrying || c.Reason != "still down" {
		t.Fatalf("unreachable again: %+v, %v; want the time it expired kept", c, err)
	}
	for _, tt := range []struct {
		e    Event
		want State
	}{
		{EventRefresh, StateActive}, {EventInvalidGrant, StateReauthRequired}, {EventFail, StateError},
		{EventMisconfigure, StateMisconfigured}, {EventStart, StatePending}, {EventDisconnect, StateDisconnected},
	} {
		c := Connection{State: StateExpired, Reason: "down", Since: t0, Retrying: true}
		if err := c.Apply(tt.e, "why", t1); err != nil || c != (Connection{State: tt.want, Reason: "why", Since: t1}) {
			t.Errorf("%s from a retried connection: %+v, %v; want %s, no longer retrying", tt.e, c, err, tt.want)
		}
	}
	was := Connection{State: StateDisconnected, Reason: "by alice", Since: t0}
	c = was
	if err := c.Apply(EventGrant, "", t1); err == nil || c != was {
		t.Errorf("a grant after a disconnect: %+v, %v; want an error and the connection unchanged", c, err)
	}
}
