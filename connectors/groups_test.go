package connectors

import (
	"strings"
	"testing"
)

// TestGroupOf: every status and connection state falls in the group the
// filters promise: ready is active; a broken connection or connector
// needs attention; one never connected, disconnected, disabled or not
// granted is inactive.
func TestGroupOf(t *testing.T) {
	tests := []struct {
		status Status
		state  State
		want   Group
	}{
		{StatusReady, StateNone, GroupActive}, // no OAuth: ready once its credential is
		{StatusReady, StateActive, GroupActive},
		{StatusReady, StateExpired, GroupActive}, // refreshed since: it works
		{StatusNeedsAuth, StateNone, GroupInactive},
		{StatusNeedsAuth, StatePending, GroupInactive},
		{StatusNeedsAuth, StateDisconnected, GroupInactive},
		{StatusNeedsAuth, StateReauthRequired, GroupNeedsAttention},
		{StatusNeedsAuth, StateExpired, GroupNeedsAttention},
		{StatusNeedsAuth, StateError, GroupNeedsAttention},
		{StatusNeedsAuth, StateMisconfigured, GroupNeedsAttention},
		{StatusNeedsAuth, StateActive, GroupNeedsAttention}, // the upstream refuses a live grant
		{StatusMisconfigured, StateError, GroupNeedsAttention},
		{StatusMisconfigured, StateMisconfigured, GroupNeedsAttention},
		{StatusMisconfigured, StateNone, GroupNeedsAttention},
		{"error", StateNone, GroupNeedsAttention}, // the upstream cannot be reached
		{"error", StateActive, GroupNeedsAttention},
		{StatusError, StateExpired, GroupNeedsAttention}, // the provider is down: retried, but news
		{StatusDisabled, StateActive, GroupInactive},     // tokens kept, but off on purpose
		{StatusDisabled, StateReauthRequired, GroupInactive},
		{StatusNoAccess, StateNone, GroupInactive},
		{"unheard-of", StateNone, GroupNeedsAttention},
	}
	for _, tt := range tests {
		if got := GroupOf(tt.status, tt.state); got != tt.want {
			t.Errorf("GroupOf(%q, %q) = %q, want %q", tt.status, tt.state.orNone(), got, tt.want)
		}
	}
}

// TestParseGroup: the four filter values and empty (all) parse; anything
// else is an error naming the allowed values.
func TestParseGroup(t *testing.T) {
	for in, want := range map[string]Group{"": GroupAll, "all": GroupAll, "active": GroupActive,
		"needs_attention": GroupNeedsAttention, "inactive": GroupInactive} {
		if got, err := ParseGroup(in); err != nil || got != want {
			t.Errorf("ParseGroup(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"ready", "Active", "needs-attention", " all", "active,inactive"} {
		_, err := ParseGroup(in)
		if err == nil || !strings.Contains(err.Error(), "use all, active, needs_attention or inactive") {
			t.Errorf("ParseGroup(%q): %v, want an error naming the groups", in, err)
		}
	}
}

// TestGroupHas: all holds every group, any other group only itself.
func TestGroupHas(t *testing.T) {
	for _, of := range Groups[1:] {
		if !GroupAll.Has(of) || !of.Has(of) {
			t.Errorf("%q is not in all or in itself", of)
		}
		for _, other := range Groups[1:] {
			if other != of && other.Has(of) {
				t.Errorf("%q holds %q", other, of)
			}
		}
	}
}
