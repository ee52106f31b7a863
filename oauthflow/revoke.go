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
)

// revokeTimeout bounds the revocation requests of one attempt: those of a
// disconnect, or of one tombstone's retry.
const revokeTimeout = 15 * time.Second

// Revocation is what RFC 7009 revocation achieved on a disconnect.
type Revocation struct {
	// Attempted: a revocation request was sent.
	Attempted bool
	// Revoked: every token sent was revoked (HTTP 200).
	Revoked bool
	// Retrying: what was not revoked is left for RetryRevocations.
	Retrying bool
	// Detail says what happened, safe to show.
	Detail string
}

// Disconnect removes a connector's credential for user (ignored under
// shared consent): the tokens and pending consents are deleted at once,
// so every later Token fails closed, and the connection becomes
// disconnected with reason. Then the tokens are revoked at the
// authorization server: the refresh token first, then the access token
// (RFC 7009 §2.1). If the server cannot be reached or answers 429 or 5xx,
// the tokens left are kept in a sealed tombstone, Revocation.Detail says
// "will retry", and RetryRevocations retries them. The error is about the
// local purge only.
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
	_, err = m.withGrant(ctx, c, subject, func(g *grantRecord) (bool, error) {
		old = *g
		g.dropTokens()
		g.StepUp = nil
		return true, g.apply(connectors.EventDisconnect, reason, m.now())
	})
	if err != nil {
		// The record in memory is disconnected even so (withGrant
		// publishes it), and revoking still helps.
		err = fmt.Errorf("disconnecting %s: %w", c.id, err)
	}
	m.dropFlows(ctx, c.id, subject)
	outcome, detail := outcomeOf(err)
	if err == nil {
		detail = reason
	}
	m.emit(Event{Kind: EventDisconnect, Connector: c.id, User: user, Outcome: outcome, Detail: detail})
	rev := m.revoke(ctx, c, old)
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
		}
	}
}

// revoke revokes the tokens of rec at its revocation endpoint. Those whose
// revocation failed in a way worth retrying are left in a tombstone for
// RetryRevocations (OF-23).
func (m *Manager) revoke(ctx context.Context, c *connector, rec grantRecord) Revocation {
	if rec.AccessToken == "" && rec.RefreshToken == "" {
		return Revocation{Detail: "there was no token to revoke"}
	}
	if rec.RevocationEndpoint == "" {
		return Revocation{Detail: "the authorization server has no revocation endpoint"}
	}
	cl, err := m.recordedClient(ctx, c, rec.Issuer, rec.ClientKind, rec.ClientID)
	if err != nil {
		return Revocation{Detail: err.Error()}
	}
	// The caller may go away; the revocation and its tombstone should not.
	ctx = context.WithoutCancel(ctx)
	t := revocationRecord{Connector: c.id, Issuer: rec.Issuer, ClientKind: rec.ClientKind, ClientID: rec.ClientID,
		Endpoint: rec.RevocationEndpoint, RefreshToken: rec.RefreshToken, AccessToken: rec.AccessToken,
		Attempts: 1, Created: m.now()}
	rev := Revocation{Attempted: true}
	rev.Revoked, rev.Detail = m.attempt(ctx, c, cl, &t)
	if t.pending() {
		var detail string
		rev.Retrying, detail = m.entomb(ctx, &t)
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
			description: sanitize(raw.ErrorDescription, maxDescription, append(secrets, token, cl.Secret)...)}
	}
	if status == 0 || status == http.StatusTooManyRequests || status >= 500 {
		return &transient{err: err, retryAfter: header.Get("Retry-After")}
	}
	return err
}
