package connectors

import (
	"fmt"
	"slices"
)

// Group is what a list of connectors can be filtered by: the few states
// a person scans for, what works, what needs someone, and what is off,
// rather than the statuses and connection states behind them.
type Group string

// The groups, and GroupAll, which holds every connector.
const (
	GroupAll Group = "all"
	// GroupActive: calls go through.
	GroupActive Group = "active"
	// GroupNeedsAttention: something broke that someone must act on: a
	// refresh refused (reauth_required, expired), a connection in error,
	// a misconfigured connector, an upstream that cannot be reached.
	GroupNeedsAttention Group = "needs_attention"
	// GroupInactive: off on purpose or never set up: disconnected,
	// disabled, never connected, or not granted to the caller.
	GroupInactive Group = "inactive"
)

// Groups are the filter values, in the order a page offers them.
var Groups = []Group{GroupAll, GroupActive, GroupNeedsAttention, GroupInactive}

// ParseGroup reads a filter value: one of Groups, or empty for all. An
// unknown value is an error that names the allowed ones, so that a typo
// is told rather than answered with an empty list.
func ParseGroup(s string) (Group, error) {
	if s == "" {
		return GroupAll, nil
	}
	if g := Group(s); slices.Contains(Groups, g) {
		return g, nil
	}
	return "", fmt.Errorf("unknown status filter %q: use all, active, needs_attention or inactive", s)
}

// GroupOf is the group of a connector whose status is status ("error"
// for an upstream that cannot be reached) and whose connection, if it
// uses OAuth, is in state (StateNone otherwise, or never connected).
func GroupOf(status Status, state State) Group {
	switch status {
	case StatusReady:
		return GroupActive
	case StatusDisabled, StatusNoAccess:
		// Off on purpose: whatever the connection's state, nothing is
		// broken that the caller could mend.
		return GroupInactive
	case StatusNeedsAuth:
		return needsAuthGroup(state)
	}
	// misconfigured, error, and any status this version does not name:
	// a status that is not plainly fine is worth a look.
	return GroupNeedsAttention
}

// needsAuthGroup tells a connection that broke from one that was never
// made or was ended on purpose: both need a consent, but only the first
// is news.
func needsAuthGroup(state State) Group {
	switch state {
	case StateNone, StatePending, StateDisconnected:
		return GroupInactive
	}
	return GroupNeedsAttention
}

// Has reports whether a connector of group of belongs in g.
func (g Group) Has(of Group) bool {
	return g == GroupAll || g == of
}
