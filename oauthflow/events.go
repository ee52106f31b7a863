package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// EventKind says what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventConsentStart: Start began a consent flow, or failed to.
	EventConsentStart EventKind = "consent_start"
	// EventConsentFinish: a consent callback ended, well or not.
	EventConsentFinish EventKind = "consent_finish"
	// EventRefresh: a token refresh ended (OutcomeOK, OutcomeFailed or
	// OutcomeInvalidGrant).
	EventRefresh EventKind = "refresh"
	// EventDisconnect: Disconnect purged a credential.
	EventDisconnect EventKind = "disconnect"
	// EventRevocation: a revocation at the authorization server ended,
	// at a disconnect or at a retry.
	EventRevocation EventKind = "revocation"
)

// Outcomes of an Event: how it ended, in one short word.
const (
	// OutcomeOK: it worked.
	OutcomeOK = "ok"
	// OutcomeError: it failed; Detail says why.
	OutcomeError = "error"
	// OutcomeFailed: a refresh failed in a way that may pass (the server
	// was down, say), or a revocation was refused.
	OutcomeFailed = "failed"
	// OutcomeInvalidGrant: the authorization server refused the refresh
	// token or the client, and the connection needs consent again.
	OutcomeInvalidGrant = "invalid_grant"
	// OutcomeRevoked: every token sent was revoked.
	OutcomeRevoked = "revoked"
	// OutcomeWillRetry: a revocation failed and will be retried.
	OutcomeWillRetry = "will_retry"
	// OutcomeNone: there was nothing to revoke, or nowhere to.
	OutcomeNone = "none"
	// OutcomeAbandoned: a revocation retry gave up, its client gone.
	OutcomeAbandoned = "abandoned"
	// OutcomeExpired: a revocation retry gave up after a day.
	OutcomeExpired = "expired"
)

// Event is something the Manager did, for audit logs and metrics. It
// holds no secret: no token, code, state or verifier.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Connector is the connector's id; empty for a callback whose state
	// did not verify.
	Connector string
	// User is who acted: who started or finished a consent, or
	// disconnected; whose grant was refreshed ("" for shared consent);
	// "" for a revocation retry.
	User string
	// Outcome is how it ended: one of the Outcome constants.
	Outcome string
	// Detail says more, safe to show.
	Detail string
	// Stopped, for a refresh, says that it took the connection out of
	// active, whatever the outcome: its user can no longer use the
	// connector until a retry or a consent works.
	Stopped bool
}

// emit tells Options.OnEvent of e.
func (m *Manager) emit(e Event) {
	if m.onEvent != nil {
		m.onEvent(e)
	}
}

// outcomeOf is OutcomeOK for a nil err, else OutcomeError with err's
// message as the detail.
func outcomeOf(err error) (string, string) {
	if err == nil {
		return OutcomeOK, ""
	}
	return OutcomeError, err.Error()
}

// revocationOutcome tells how a revocation ended.
func revocationOutcome(rev Revocation) string {
	switch {
	case !rev.Attempted:
		return OutcomeNone
	case rev.Revoked:
		return OutcomeRevoked
	case rev.Retrying:
		return OutcomeWillRetry
	}
	return OutcomeFailed
}

// revoked reports a revocation made for user at connector.
func (m *Manager) revoked(connector, user string, rev Revocation) {
	m.emit(Event{Kind: EventRevocation, Connector: connector, User: user, Outcome: revocationOutcome(rev), Detail: rev.Detail})
}

// States counts the connections of this Manager's connectors by state,
// from the grant records in the store (one per connector and user, or
// one per shared connector), for metrics. A record that cannot be read
// counts as StateError.
func (m *Manager) States(ctx context.Context) (map[connectors.State]int, error) {
	keys, err := m.store.List(ctx, prefixGrants)
	if err != nil {
		return nil, fmt.Errorf("listing the grants: %w", err)
	}
	out := map[connectors.State]int{}
	for _, key := range keys {
		id, _, _ := strings.Cut(strings.TrimPrefix(key, prefixGrants), "/")
		if m.conns[id] == nil {
			continue
		}
		var rec grantRecord
		err := getJSON(ctx, m.store, key, (*grantWire)(&rec))
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue // deleted since the listing
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			out[connectors.StateError]++
		default:
			out[rec.Connection.State]++
		}
	}
	return out, nil
}
