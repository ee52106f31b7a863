// Package audit records what mcpgate did on whose behalf: consents,
// refresh failures, disconnects, revocations, admin changes, pinned items
// that drifted, approvals and tool calls. Each event is logged at once, as
// one structured line, and kept in a bounded ring in a store, or in a
// Table that several instances share, where an admin can query it. An
// event never holds a secret: tool arguments enter it only as a keyed
// hash.
//
// The ring is one per class of event (admin changes, OAuth events and
// approvers' decisions, drift, tool calls), each with its own retention,
// so that no flood of tool calls can push an admin change or a revocation
// out of it; and the attempts that anyone can repeat at will, such as
// refused tool calls, are kept one by one only up to a burst per user and
// window, the rest counted in one event, so that one user's flood cannot
// push out everyone else's calls.
package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// Kind says what an Event records.
type Kind string

// The kinds of event.
const (
	// KindConsentStart: someone started a consent flow for a connector.
	KindConsentStart Kind = "consent_start"
	// KindConsentFinish: a consent flow's callback ended, well or not.
	KindConsentFinish Kind = "consent_finish"
	// KindRefreshFailure: a token could not be refreshed.
	KindRefreshFailure Kind = "refresh_failure"
	// KindDisconnect: someone removed a connector's credential.
	KindDisconnect Kind = "disconnect"
	// KindRevocation: a token revocation at an authorization server ended.
	KindRevocation Kind = "revocation"
	// KindAdminChange: an admin changed the gateway's runtime
	// configuration.
	KindAdminChange Kind = "admin_change"
	// KindDrift: an upstream listed a pinned tool or prompt with a
	// definition not seen before, which the gateway hides until an admin
	// approves it.
	KindDrift Kind = "drift"
	// KindToolCall: an agent called a tool.
	KindToolCall Kind = "tool_call"
	// KindApprovalRequested: a tool call waits for a person's approval.
	KindApprovalRequested Kind = "approval_requested"
	// KindApprovalApproved: an approver approved a waiting call.
	KindApprovalApproved Kind = "approval_approved"
	// KindApprovalDenied: an approver denied a waiting call.
	KindApprovalDenied Kind = "approval_denied"
	// KindApprovalUsed: the approved call was made, once.
	KindApprovalUsed Kind = "approval_used"
	// KindApprovalExpired: a request or an approval lapsed unused.
	KindApprovalExpired Kind = "approval_expired"
)

// Decisions of the grants on a tool call.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// OutcomeOK is the outcome of an event that worked. Other outcomes are
// the producer's own short words: mcpmux.Outcome for tool calls, and
// oauthflow's Outcome constants for consents, refreshes and revocations.
const OutcomeOK = "ok"

// OutcomeSuppressed is the outcome of an event that stands for Count
// attempts of its kind by its user, beyond the burst of one window: each
// was logged as a line, but the ring keeps only their count.
const OutcomeSuppressed = "suppressed"

// maxField bounds the text fields of an Event, in bytes.
const maxField = 256

// Event is one thing the gateway did. It holds no secret: no token, no
// tool argument (only ArgsHash), no authorization code.
type Event struct {
	// Time is when it happened; Record sets it when zero.
	Time time.Time `json:"time"`
	// Kind says what happened.
	Kind Kind `json:"kind"`
	// User is who acted, as the site's authentication named them.
	User string `json:"user,omitempty"`
	// Connector is the connector's id.
	Connector string `json:"connector,omitempty"`
	// Tool is the tool's name at its upstream or, for a call refused
	// before the tool was found, the name the agent asked for.
	Tool string `json:"tool,omitempty"`
	// Decision is the grants' verdict on a tool call: DecisionAllow or
	// DecisionDeny, or empty when the call ended before the verdict.
	Decision string `json:"decision,omitempty"`
	// Outcome is how it ended: OutcomeOK or the producer's own
	// short word.
	Outcome string `json:"outcome,omitempty"`
	// Duration is how long it took. It is encoded as duration_ms, in
	// milliseconds.
	Duration time.Duration `json:"-"`
	// ArgsHash identifies a tool call's arguments without revealing
	// them; see ArgsHash.
	ArgsHash string `json:"args_hash,omitempty"`
	// Count, on an event whose Outcome is OutcomeSuppressed, is how many
	// events it stands for; zero on every other event.
	Count int `json:"count,omitempty"`
	// Detail says more, for people, in a short text that never holds a
	// secret.
	Detail string `json:"detail,omitempty"`
}

// plain is Event without its methods, for encoding.
type plain Event

// wire is an Event as it is encoded.
type wire struct {
	plain
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// MarshalJSON encodes the event with its duration in milliseconds.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(wire{plain(e), milliseconds(e.Duration)})
}

// UnmarshalJSON decodes an event that MarshalJSON encoded.
func (e *Event) UnmarshalJSON(data []byte) error {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = Event(w.plain)
	e.Duration = time.Duration(w.DurationMS * float64(time.Millisecond))
	return nil
}

// class is a retention class: each has a ring of its own in the store,
// so that no number of events of one class evicts an event of another.
type class uint8

// The classes, in the order the writer serves them: the rare events that
// an admin most needs first, the tool calls anyone can make last.
const (
	// classAdmin: changes an admin made to the runtime configuration.
	classAdmin class = iota
	// classAuth: consents that completed, disconnects, revocations, and
	// approvers' decisions on waiting tool calls.
	classAuth
	// classDrift: pinned tools and prompts that an upstream changed.
	// An upstream decides how often that happens, so its events are kept
	// apart from the admin changes, which they would otherwise evict, and
	// limited as attempts are (see attempt), per connector.
	classDrift
	// classCalls: allowed tool calls.
	classCalls
	// classAuthAttempts: consents started or failed, refresh failures:
	// attempts (see attempt) that anyone may make at will. Kept apart
	// from classAuth, so that a flood of bogus callbacks, however slow,
	// never evicts a disconnect or a revocation.
	classAuthAttempts
	// classCallAttempts: tool calls refused, or ended before the grants
	// allowed them; kept apart from the consent attempts, so that no tool
	// call noise evicts a consent.
	classCallAttempts
	numClasses
)

// classNames are the classes' names, which are their folders in the store.
var classNames = [numClasses]string{"admin", "auth", "drift", "calls", "auth-attempts", "call-attempts"}

// String returns c's name.
func (c class) String() string { return classNames[c] }

// classNamed returns the class named name.
func classNamed(name string) (class, bool) {
	for c, n := range classNames {
		if n == name {
			return class(c), true
		}
	}
	return 0, false
}

// classOf returns the class of e: classCalls for a kind this package does
// not know.
func classOf(e Event) class {
	switch {
	case e.Kind == KindAdminChange:
		return classAdmin
	case e.Kind == KindDrift:
		return classDrift
	case attempt(e) && e.Kind == KindToolCall:
		return classCallAttempts
	case attempt(e):
		return classAuthAttempts
	case e.Kind == KindConsentFinish, e.Kind == KindDisconnect, e.Kind == KindRevocation,
		e.Kind == KindApprovalApproved, e.Kind == KindApprovalDenied:
		// An approver's decision grants or refuses authority, as a
		// consent or a revocation does: kept where no flood of tool
		// calls evicts it. The requests, uses and expiries that calls
		// cause go with the calls.
		return classAuth
	}
	return classCalls
}

// attempt reports whether e is an attempt: an event that anyone who can
// reach the gateway, or an upstream, may cause as often as they like, to
// no effect (a tool call refused or ended before the grants allowed it, a
// consent started or failed, a refresh failed, a pinned item changed
// upstream, which only hides it). One caller could fill a ring with those,
// so they are kept one by one only up to a burst; see limiter. An
// allowed tool call, a completed consent, a disconnect, a revocation and
// an admin change took effect, and are always kept.
func attempt(e Event) bool {
	switch e.Kind {
	case KindToolCall:
		return e.Decision != DecisionAllow
	case KindConsentStart, KindRefreshFailure, KindDrift:
		return true
	case KindConsentFinish:
		return e.Outcome != OutcomeOK
	}
	return false
}

// milliseconds converts d to fractional milliseconds.
func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ArgsHash returns a keyed hash of a tool call's raw arguments, for
// Event.ArgsHash: HMAC-SHA256 under key, the first 128 bits in hex. Equal
// arguments (byte for byte) give equal hashes under one key, while the
// key keeps anyone who reads the log from testing guesses of them. With
// no key it returns "", and the event carries no trace of the arguments.
func ArgsHash(key, raw []byte) string {
	if len(key) == 0 {
		return ""
	}
	return sumArgs(hmac.New(sha256.New, key), raw)
}

// sumArgs returns ArgsHash of raw with mac, an HMAC-SHA256 in its keyed
// state, and leaves mac in that state again.
func sumArgs(mac hash.Hash, raw []byte) string {
	mac.Write(raw)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	mac.Reset()
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// shorten cuts s to at most n bytes on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return textcut.Prefix(s, n-len("…")) + "…"
}
