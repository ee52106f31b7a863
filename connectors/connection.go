package connectors

import (
	"fmt"
	"time"
)

// State is where the OAuth connection of one connector (and, for per-user
// consent, one user) stands.
type State string

// The connection states. The zero State means consent was never given.
const (
	StateNone           State = ""
	StatePending        State = "pending"
	StateActive         State = "active"
	StateReauthRequired State = "reauth_required"
	StateExpired        State = "expired"
	StateError          State = "error"
	// StateMisconfigured: consent cannot work until an admin changes the
	// connector, such as a token response without the refresh token that
	// the connector needs; Reason says what. The rule for the refresh
	// token: an access token that expires (expires_in) with no refresh
	// token ends the connection at its expiry. The first time, that is
	// StateExpired, since a consent may bring one; when the consent after
	// it again brings an expiring token and no refresh token, the
	// connector evidently needs offline access that the provider does not
	// grant it, and each consent would end the same way: the connection
	// becomes misconfigured, so that no one is sent to reconnect in a
	// loop. A person may still start a consent, once an admin has fixed
	// the client (asked for offline_access, or allowed the refresh_token
	// grant at the provider).
	StateMisconfigured State = "misconfigured"
	StateDisconnected  State = "disconnected"
)

// Event is something that moves a connection between states.
type Event string

// The events of a connection's life.
const (
	// EventStart: a consent flow began.
	EventStart Event = "start"
	// EventGrant: the flow's callback stored fresh tokens.
	EventGrant Event = "grant"
	// EventRefresh: a refresh stored fresh tokens.
	EventRefresh Event = "refresh"
	// EventExpire: the access token expired and nothing can refresh it.
	EventExpire Event = "expire"
	// EventInvalidGrant: the authorization server refused the refresh
	// token, or the upstream demands scopes the grant lacks.
	EventInvalidGrant Event = "invalid_grant"
	// EventFail: the connection broke for another reason, such as a
	// record that no longer opens, a refresh that the authorization
	// server refused with an error other than invalid_grant or a client
	// error (invalid_request, invalid_scope…), or a malformed token
	// response.
	EventFail Event = "fail"
	// EventUnreachable: a refresh was due, but the authorization server
	// could not be reached or failed (5xx, 429). The tokens are kept and
	// the refresh is tried again on the next call: nothing is revoked,
	// and no one need consent again. The connection is expired and
	// Retrying, which its Status tells (StatusError).
	EventUnreachable Event = "unreachable"
	// EventMisconfigure: the connection cannot go on until an admin
	// changes the connector or its client at the provider: the
	// authorization server issued no refresh token for an expiring access
	// token, again after a consent (see StateMisconfigured), or it no
	// longer accepts mcpgate's client (invalid_client,
	// unauthorized_client) at a refresh.
	EventMisconfigure Event = "misconfigure"
	// EventDisconnect: a user or admin removed the credential.
	EventDisconnect Event = "disconnect"
)

// transitions lists, for each event, the states it may leave from and the
// state it leads to. A flow started over a working connection keeps the
// connection active: the old tokens serve until the new ones arrive.
var transitions = map[Event]struct {
	from []State
	to   func(State) State
}{
	EventStart: {
		from: []State{StateNone, StatePending, StateActive, StateReauthRequired, StateExpired, StateError, StateMisconfigured, StateDisconnected},
		to: func(s State) State {
			if s == StateActive {
				return StateActive
			}
			return StatePending
		},
	},
	EventGrant:        {from: []State{StatePending, StateActive}, to: always(StateActive)},
	EventRefresh:      {from: []State{StateActive, StateExpired}, to: always(StateActive)},
	EventExpire:       {from: []State{StateActive}, to: always(StateExpired)},
	EventInvalidGrant: {from: []State{StateActive, StateExpired}, to: always(StateReauthRequired)},
	EventFail:         {from: []State{StatePending, StateActive, StateExpired, StateReauthRequired}, to: always(StateError)},
	EventUnreachable:  {from: []State{StateActive, StateExpired}, to: always(StateExpired)},
	EventMisconfigure: {from: []State{StateActive, StateExpired}, to: always(StateMisconfigured)},
	EventDisconnect: {
		from: []State{StateNone, StatePending, StateActive, StateReauthRequired, StateExpired, StateError, StateMisconfigured, StateDisconnected},
		to:   always(StateDisconnected),
	},
}

func always(s State) func(State) State { return func(State) State { return s } }

// Next is the state that event e leads to from s, or an error if e cannot
// happen in s: a grant arriving after a disconnect, say.
func (s State) Next(e Event) (State, error) {
	t, ok := transitions[e]
	if !ok {
		return s, fmt.Errorf("unknown connection event %q", e)
	}
	for _, from := range t.from {
		if from == s {
			return t.to(s), nil
		}
	}
	return s, fmt.Errorf("connection event %q cannot happen in state %q", e, s.orNone())
}

func (s State) orNone() string {
	if s == StateNone {
		return "none"
	}
	return string(s)
}

// Status is what a user is told about a connector.
type Status string

// The statuses a user sees.
const (
	// StatusReady: calls go through.
	StatusReady Status = "ready"
	// StatusNeedsAuth: someone must consent (the user, or an admin for
	// shared consent) before calls go through.
	StatusNeedsAuth Status = "needs_auth"
	// StatusMisconfigured: consent cannot work until an admin changes
	// something; Reason says what.
	StatusMisconfigured Status = "misconfigured"
	// StatusNoAccess: no grant lets this user use the connector.
	StatusNoAccess Status = "no_access"
	// StatusDisabled: an admin disabled the connector; its tokens are
	// kept, so that enabling it needs no new consent.
	StatusDisabled Status = "disabled"
	// StatusError: calls fail for now, and neither a consent nor an
	// admin is what they wait for: the provider could not be reached
	// at the last refresh, and mcpgate tries again on the next call
	// with the tokens it kept (or, for a connector without OAuth, its
	// upstream cannot be reached).
	StatusError Status = "error"
)

// Connection is the state of one OAuth connection, without its secrets.
type Connection struct {
	// State is where the connection stands.
	State State `json:"state,omitempty"`
	// Reason says why the connection left active: the disconnect reason,
	// or what broke.
	Reason string `json:"reason,omitempty"`
	// Since is when State was entered.
	Since time.Time `json:"since,omitzero"`
	// Retrying tells that the connection is expired only because the
	// provider could not be reached at its last refresh
	// (EventUnreachable): its tokens are kept and the next call tries
	// again, so that a consent would not help. It is recorded with the
	// event, not read from Reason, whose words may change.
	Retrying bool `json:"retrying,omitempty"`
}

// Apply moves c through event e, which happened at now, for reason (""
// when nothing went wrong). An event that cannot happen in c's state is
// an error, and c is left as it was.
func (c *Connection) Apply(e Event, reason string, now time.Time) error {
	next, err := c.State.Next(e)
	if err != nil {
		return err
	}
	if next != c.State {
		c.Since = now
	}
	c.State, c.Reason, c.Retrying = next, reason, e == EventUnreachable
	return nil
}

// Status is what a user with access is told about the connection.
func (c Connection) Status() Status {
	switch c.State {
	case StateActive:
		return StatusReady
	case StateError, StateMisconfigured:
		return StatusMisconfigured
	case StateExpired:
		if c.Retrying {
			return StatusError
		}
	}
	return StatusNeedsAuth
}
