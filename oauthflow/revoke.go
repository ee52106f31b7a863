package oauthflow

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// revokeTimeout bounds the revocation requests of one disconnect.
const revokeTimeout = 15 * time.Second

// Revocation is what RFC 7009 revocation achieved on a disconnect.
type Revocation struct {
	// Attempted: a revocation request was sent.
	Attempted bool
	// Revoked: every token sent was revoked (HTTP 200).
	Revoked bool
	// Detail says what happened, safe to show.
	Detail string
}

// Disconnect removes a connector's credential for user (ignored under
// shared consent): the tokens and pending consents are deleted at once,
// so every later Token fails closed, and the connection becomes
// disconnected with reason. Then the tokens are revoked at the
// authorization server, best effort: the refresh token first, then the
// access token (RFC 7009 §2.1). The error is about the local purge only.
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
	rev := m.revoke(ctx, c, old)
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

// revoke revokes the tokens of rec at its revocation endpoint.
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	rev := Revocation{Attempted: true, Revoked: true}
	var details []string
	for _, t := range []struct{ token, hint string }{{rec.RefreshToken, "refresh_token"}, {rec.AccessToken, "access_token"}} {
		if t.token == "" {
			continue
		}
		if err := c.revokeOne(ctx, cl, rec.RevocationEndpoint, t.token, t.hint, rec.AccessToken, rec.RefreshToken); err != nil {
			rev.Revoked = false
			details = append(details, strings.ReplaceAll(t.hint, "_", " ")+": "+err.Error())
		} else {
			details = append(details, strings.ReplaceAll(t.hint, "_", " ")+" revoked")
		}
	}
	rev.Detail = strings.Join(details, "; ")
	return rev
}

// revokeOne sends one RFC 7009 revocation request. 200 means revoked, or
// that the server did not know the token; a 503 means it may still be
// valid (§2.2.1). secrets are scrubbed from the error the server sends back.
func (c *connector) revokeOne(ctx context.Context, cl client, endpoint, token, hint string, secrets ...string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	status, body, err := c.postForm(ctx, cl, endpoint, form, maxTokenBody)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		return nil
	}
	raw, _ := decodeTokenBody(body)
	return &endpointError{endpoint: "revocation", status: status, code: safeCode(raw.Error),
		description: sanitize(raw.ErrorDescription, maxDescription, append(secrets, token, cl.Secret)...)}
}
