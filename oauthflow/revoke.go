package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// revokeTimeout bounds the revocation requests of one attempt: those of a
// disconnect, or of one tombstone's retry.
const revokeTimeout = 15 * time.Second

// Revocation is what RFC 7009 revocation achieved on a disconnect.
type Revocation struct {
	// Attempted: a revocation request was sent.
	Attempted bool `json:"attempted"`
	// Revoked: every token sent was revoked (HTTP 200).
	Revoked bool `json:"revoked"`
	// Retrying: what was not revoked is left for RetryRevocations.
	Retrying bool `json:"retrying,omitempty"`
	// Detail says what happened, safe to show.
	Detail string `json:"detail,omitempty"`
}

// Disconnect removes a connector's credential for user (ignored under
// shared consent): the tokens and pending consents are deleted at once,
// so every later Token fails closed, and the connection becomes
// disconnected with reason. Then the tokens are revoked at the
// authorization server: the refresh token first, then the access token
// (RFC 7009 §2.1). The revocation is owed from the moment the tokens
// leave the grant: a sealed tombstone holding them is stored in the same
// batch, so that a crash before the server answers leaves them to
// RetryRevocations rather than live and forgotten. If the server cannot
// be reached or answers 429 or 5xx, the tombstone keeps the tokens left,
// Revocation.Detail says "will retry", and RetryRevocations retries them;
// else it is deleted. The error is about the local purge only.
func (m *Manager) Disconnect(ctx context.Context, connector, user, reason string) (Revocation, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return Revocation{}, err
	}
	subject, err := c.subject(user)
	if err != nil {
		return Revocation{}, err
	}
	if reason = sanitize(reason, maxDescription); reason == "" {
		reason = "disconnected"
	}
	var old grantRecord
	var owed *revocationRecord
	tomb := revocationKey()
	_, err = m.withGrantAnd(ctx, c, subject, func(g *grantRecord) (bool, []store.Write, error) {
		old, owed = *g, m.owed(c, *g)
		g.dropTokens()
		g.StepUp = nil
		err := g.apply(connectors.EventDisconnect, reason, m.now())
		if owed == nil {
			return true, nil, err
		}
		w, werr := m.revocationWrite(tomb, owed)
		if werr != nil {
			return true, nil, errors.Join(err, werr)
		}
		return true, []store.Write{w}, err
	})
	if err != nil {
		// The record in memory is disconnected even so (withGrant
		// publishes it), and revoking still helps; the tombstone may
		// not be stored.
		err = fmt.Errorf("disconnecting %s: %w", c.id, err)
		tomb = ""
	}
	m.dropFlows(ctx, c.id, subject)
	outcome, detail := outcomeOf(err)
	if err == nil {
		detail = reason
	}
	m.emit(Event{Kind: EventDisconnect, Connector: c.id, User: user, Outcome: outcome, Detail: detail})
	rev := unrevocable(old)
	if owed != nil {
		rev = m.revokeOwed(ctx, c, owed, tomb)
	}
	m.revoked(c.id, user, rev)
	m.log.Info("disconnected", zap.String("connector", c.id), zap.String("user", subject), zap.String("issuer", old.Issuer),
		zap.String("event", string(connectors.EventDisconnect)), zap.Bool("revoked", rev.Revoked), zap.String("revocation", rev.Detail))
	return rev, err
}

// dropFlows deletes the pending consents of one connector and subject, so
// that none completes after the disconnect.
func (m *Manager) dropFlows(ctx context.Context, connector, subject string) {
	keys, err := m.store.List(ctx, prefixFlows)
	if err != nil {
		m.log.Error("listing consent flows", zap.Error(err))
		return
	}
	for _, key := range keys {
		var f flowRecord
		if getJSON(ctx, m.store, key, (*flowWire)(&f)) != nil || f.Connector != connector || f.Subject != subject {
			continue
		}
		if err := m.store.Delete(ctx, key); err != nil {
			m.log.Error("deleting a consent flow", zap.String("connector", connector), zap.Error(err))
			continue
		}
		m.forgetFlow(ctx, &f, strings.TrimPrefix(key, prefixFlows))
	}
}

// revoke revokes the tokens of rec, which no grant holds, at its
// revocation endpoint. Its tombstone is stored first, and keeps those
// whose revocation failed in a way worth retrying for RetryRevocations.
func (m *Manager) revoke(ctx context.Context, c *connector, rec grantRecord) Revocation {
	t := m.owed(c, rec)
	if t == nil {
		return unrevocable(rec)
	}
	// The caller may go away; the revocation and its tombstone should not.
	ctx = context.WithoutCancel(ctx)
	key := revocationKey()
	if err := m.putRevocation(ctx, key, t); err != nil {
		m.log.Error("storing a revocation before its first attempt", zap.String("connector", c.id), zap.Error(err))
		key = ""
	}
	return m.revokeOwed(ctx, c, t, key)
}

// owed is the tombstone of the revocation that rec's tokens are owed, as
// it stands before the first attempt: counted, and leased for a backoff
// (see claim), so that no retry takes it during that attempt, and one
// does if the process dies during it. It is nil if rec holds no token or
// names no revocation endpoint.
func (m *Manager) owed(c *connector, rec grantRecord) *revocationRecord {
	if (rec.AccessToken == "" && rec.RefreshToken == "") || rec.RevocationEndpoint == "" {
		return nil
	}
	now := m.now()
	return &revocationRecord{Connector: c.id, Issuer: rec.Issuer, ClientKind: rec.ClientKind, ClientID: rec.ClientID,
		Endpoint: rec.RevocationEndpoint, RefreshToken: rec.RefreshToken, AccessToken: rec.AccessToken,
		Attempts: 1, Next: now.Add(backoff(1)), Created: now}
}

// unrevocable says why rec's tokens are not revoked, when owed is nil.
func unrevocable(rec grantRecord) Revocation {
	if rec.AccessToken == "" && rec.RefreshToken == "" {
		return Revocation{Detail: "there was no token to revoke"}
	}
	return Revocation{Detail: "the authorization server has no revocation endpoint"}
}

// revokeOwed makes the first attempt at t, whose tombstone is stored
// under key ("" if it could not be), and settles the tombstone with what
// is left to retry.
func (m *Manager) revokeOwed(ctx context.Context, c *connector, t *revocationRecord, key string) Revocation {
	// The caller may go away; the revocation and its tombstone should not.
	ctx = context.WithoutCancel(ctx)
	var rev Revocation
	cl, err := m.recordedClient(ctx, c, t.Issuer, t.ClientKind, t.ClientID)
	switch {
	case errors.Is(err, errClientGone):
		// Nothing can authenticate as the client the tokens belong to.
		t.AccessToken, t.RefreshToken = "", ""
		rev.Detail = err.Error()
	case err != nil:
		rev.Detail = err.Error() // the lease stands: a retry is a backoff away
	default:
		rev.Attempted = true
		rev.Revoked, rev.Detail = m.attempt(ctx, c, cl, t)
	}
	var detail string
	if rev.Retrying, detail = m.keep(ctx, key, t); detail != "" {
		rev.Detail += "; " + detail
	}
	return rev
}

// attempt sends one revocation request for each token left in t, the
// refresh token first (RFC 7009 §2.1), all within revokeTimeout. It
// leaves in t only the tokens worth retrying, with the time to retry them
// in t.Next, and returns whether every token sent was revoked and what
// happened, safe to show.
func (m *Manager) attempt(ctx context.Context, c *connector, cl client, t *revocationRecord) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	secrets := []string{t.AccessToken, t.RefreshToken}
	revoked, delay := true, time.Duration(0)
	var details []string
	for _, tok := range []struct {
		value *string
		hint  string
	}{{&t.RefreshToken, "refresh_token"}, {&t.AccessToken, "access_token"}} {
		if *tok.value == "" {
			continue
		}
		name := strings.ReplaceAll(tok.hint, "_", " ")
		err := c.revokeOne(ctx, cl, t.Endpoint, *tok.value, tok.hint, secrets...)
		if err == nil {
			*tok.value = ""
			details = append(details, name+" revoked")
			continue
		}
		revoked = false
		details = append(details, name+": "+err.Error())
		var tr *transient
		if errors.As(err, &tr) {
			delay = max(delay, m.retryDelay(tr, t.Attempts))
		} else {
			*tok.value = "" // a definitive answer: retrying would not change it
		}
	}
	t.Next = m.now().Add(delay)
	return revoked, strings.Join(details, "; ")
}

// transient is a revocation failure worth retrying: the authorization
// server could not be reached or did not answer in time, or it answered
// 429 or 5xx, after which the token may still be valid (RFC 7009 §2.2.1).
type transient struct {
	err        error
	retryAfter string // the answer's Retry-After header, if any
}

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

// revokeOne sends one RFC 7009 revocation request. 200 means revoked, or
// that the server did not know the token (§2.2); a failure worth retrying
// is a *transient. secrets are scrubbed from the error the server sends
// back.
func (c *connector) revokeOne(ctx context.Context, cl client, endpoint, token, hint string, secrets ...string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	status, header, body, err := c.postForm(ctx, cl, endpoint, form, maxTokenBody)
	if status == http.StatusOK {
		return nil // even if the body broke off: it carries nothing the client needs
	}
	if err == nil {
		raw, _ := decodeTokenBody(body)
		err = &endpointError{endpoint: "revocation", status: status, code: safeCode(raw.Error),
			description: sanitize(raw.ErrorDescription, maxDescription, append(secrets, token, cl.Secret, form.Get("client_assertion"))...)}
	}
	if status == 0 || status == http.StatusTooManyRequests || status >= 500 {
		return &transient{err: err, retryAfter: header.Get("Retry-After")}
	}
	return err
}
