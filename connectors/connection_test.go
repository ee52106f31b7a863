package connectors

import (
	"strings"
	"testing"
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
		EventFail: {
			StatePending: StateError, StateActive: StateError, StateExpired: StateError,
			StateReauthRequired: StateError,
		},
		// A provider that is down keeps the tokens, to retry: expired.
		EventUnreachable: {StateActive: StateExpired, StateExpired: StateExpired},
		// No refresh token again: only an admin can help.
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
}
