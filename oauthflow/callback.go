package oauthflow

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// maxCodeLen bounds an authorization code.
const maxCodeLen = 4096

// Outcome is where a consent callback leads.
type Outcome struct {
	// Connector is the connector the consent was for.
	Connector string
	// RedirectURL is where to send the browser next, taken from the
	// verified flow only; "" for none.
	RedirectURL string
}

// ErrorRedirect returns RedirectURL with e added as the error and
// error_description query parameters, or "" when there is no RedirectURL.
func (o Outcome) ErrorRedirect(e *CallbackError) string {
	if o.RedirectURL == "" {
		return ""
	}
	return withError(o.RedirectURL, e)
}

// Callback completes a consent from the authorization server's redirect
// to CallbackPath, for user (the site's identity of the browser). It
// checks the state (signed, single use, ten minutes, bound to the user
// who started), the RFC 9207 iss, then redeems the code once at the token
// endpoint recorded at the start, and stores the grant. Failures are
// *CallbackError; once the state is verified, the Outcome names the
// connector and the redirect even on failure, so that the caller can send
// the browser back with the error.
func (m *Manager) Callback(ctx context.Context, query url.Values, user string) (Outcome, error) {
	out, err := m.complete(ctx, query, user)
	e := Event{Kind: EventConsentFinish, Connector: out.Connector, User: user, Outcome: OutcomeOK}
	var ce *CallbackError
	if errors.As(err, &ce) {
		e.Outcome, e.Detail = OutcomeError, ce.Code+": "+ce.Description
	} else if err != nil {
		e.Outcome, e.Detail = outcomeOf(err)
	}
	m.emit(e)
	return out, err
}

// complete is Callback without the event.
func (m *Manager) complete(ctx context.Context, query url.Values, user string) (Outcome, error) {
	f, err := m.takeFlow(ctx, query)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Connector: f.Connector, RedirectURL: f.RedirectURL}
	c, code, err := m.checkResponse(f, query, user)
	if err != nil {
		return out, err
	}
	return out, m.redeem(ctx, c, f, code)
}

// takeFlow verifies the state and takes its flow record: a second
// callback with the same state finds nothing.
func (m *Manager) takeFlow(ctx context.Context, q url.Values) (*flowRecord, error) {
	states := q["state"]
	if len(states) == 0 || states[0] == "" {
		return nil, callbackError(http.StatusBadRequest, "invalid_request", "missing state")
	}
	id, ok := parseState(m.stateKey, states[0])
	if !ok || len(states) > 1 {
		return nil, callbackError(http.StatusBadRequest, "invalid_request", "invalid state")
	}
	b, err := m.store.Take(ctx, flowKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, callbackError(http.StatusBadRequest, "invalid_request", "state already used or expired")
	}
	var f flowRecord
	if err == nil {
		err = decodeJSON(b, (*flowWire)(&f))
	}
	if err != nil {
		m.log.Error("reading a consent flow", zap.Error(err))
		return nil, callbackError(http.StatusInternalServerError, "server_error", "the consent flow cannot be read")
	}
	m.forgetFlow(ctx, &f, id)
	now := m.now()
	if now.After(f.Created.Add(flowTTL)) {
		return nil, callbackError(http.StatusBadRequest, "invalid_request", "state expired: start again")
	}
	if f.Created.After(now.Add(clockSkew)) {
		return nil, callbackError(http.StatusBadRequest, "invalid_request", "invalid state")
	}
	return &f, nil
}

// checkResponse checks the rest of the redirect against the flow: who
// completes it, which server answered (RFC 9207), and whether it
// answered with an error or a code.
func (m *Manager) checkResponse(f *flowRecord, q url.Values, user string) (*connector, string, error) {
	c := m.conns[f.Connector]
	switch {
	case c == nil:
		return nil, "", callbackError(http.StatusBadRequest, "invalid_request", "the connector no longer exists")
	case f.Initiator != "" && user != f.Initiator:
		return nil, "", callbackError(http.StatusForbidden, "access_denied", "this consent was started by another user")
	case c.cfg.Disabled:
		// Disabled since the start: the code is never redeemed, so no
		// token is issued for a connector that an admin turned off.
		return nil, "", callbackError(http.StatusForbidden, "access_denied", connectors.DisabledError(c.id).Error()+": ask an admin to enable it, then connect again")
	case f.Binding != c.cfg.Binding:
		// Changed since the start (another resource, server, client or
		// consent mode): tokens the flow would get are not for it now.
		return nil, "", callbackError(http.StatusConflict, "access_denied", "an admin changed the connector while consent was in progress: start again")
	}
	for _, p := range []string{"code", "iss", "error", "error_description"} {
		if len(q[p]) > 1 {
			return nil, "", callbackError(http.StatusBadRequest, "invalid_request", "the parameter "+p+" appears more than once")
		}
	}
	// RFC 9207 §2.4: compare byte for byte, with no normalization; on a
	// mismatch, neither act on nor show the error parameters.
	iss, hasIss := q["iss"]
	switch {
	case hasIss && iss[0] != f.Issuer:
		return nil, "", callbackError(http.StatusBadRequest, "invalid_request", "the response came from another authorization server (iss mismatch)")
	case !hasIss && f.IssRequired:
		return nil, "", callbackError(http.StatusBadRequest, "invalid_request", "the authorization server did not identify itself (iss missing)")
	}
	if e := q.Get("error"); e != "" {
		return nil, "", serverError(e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" || len(code) > maxCodeLen {
		return nil, "", callbackError(http.StatusBadRequest, "invalid_request", "missing code")
	}
	return c, code, nil
}

// serverError passes on an error the authorization server redirected with:
// an RFC 6749 code (else server_error) and a sanitized description; never
// error_uri.
func serverError(code, description string) *CallbackError {
	status, ok := authorizeErrors[code]
	if !ok {
		code, status = "server_error", http.StatusBadGateway
	}
	description = sanitize(description, maxDescription)
	if description == "" {
		description = "the authorization server answered " + code
	}
	return callbackError(status, code, description)
}

// redeem exchanges the code, once, at the flow's token endpoint, and
// stores the grant.
func (m *Manager) redeem(ctx context.Context, c *connector, f *flowRecord, code string) error {
	cl, err := m.recordedClient(ctx, c, f.Issuer, f.ClientKind, f.ClientID)
	if err != nil {
		return callbackError(http.StatusBadGateway, "server_error", err.Error()+": start again")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.RedirectURI},
		"code_verifier": {f.Verifier}, "resource": {f.Resource}}
	if f.Audience != "" {
		form.Set("audience", f.Audience)
	}
	key, err := newDPoPKeyIf(f.DPoP)
	if err != nil {
		return callbackError(http.StatusInternalServerError, "server_error", err.Error())
	}
	tr, err := m.dpopTokenCall(ctx, c, cl, f.TokenEndpoint, form, key)
	if err != nil {
		return callbackError(http.StatusBadGateway, "server_error", sanitize("the authorization server issued no token: "+err.Error(), maxDescription))
	}
	_, err = m.withGrant(ctx, c, f.Subject, func(g *grantRecord) (bool, error) {
		err := grant(g, f, tr, m.now())
		return err == nil, err
	})
	switch {
	case errors.Is(err, errDisconnected):
		m.revoked(c.id, f.Subject, m.revoke(ctx, c, grantOf(f, tr)))
		return callbackError(http.StatusConflict, "access_denied", "the connection was disconnected while consent was in progress: start again")
	case err != nil:
		m.log.Error("storing a grant", zap.String("connector", c.id), zap.Error(err))
		return callbackError(http.StatusInternalServerError, "server_error", "the credential cannot be stored")
	}
	m.log.Info("connected", zap.String("connector", c.id), zap.String("user", f.Subject),
		zap.String("issuer", f.Issuer), zap.String("event", string(connectors.EventGrant)))
	return nil
}

// errDisconnected: a grant arrived for a connection that was disconnected
// after the consent started.
var errDisconnected = errors.New("the connection was disconnected")

// grant moves g to active with the flow's fresh tokens. A connection that
// broke since the start (reauth, expiry, error) takes the start again; a
// disconnected one refuses the grant.
func grant(g *grantRecord, f *flowRecord, tr *tokenResponse, now time.Time) error {
	switch g.Connection.State {
	case connectors.StateReauthRequired, connectors.StateExpired, connectors.StateError, connectors.StateMisconfigured:
		if err := g.apply(connectors.EventStart, "", now); err != nil {
			return err
		}
	}
	if err := g.apply(connectors.EventGrant, "", now); err != nil {
		return errDisconnected
	}
	next := grantOf(f, tr)
	next.Connection, next.Generation, next.Obtained, next.Updated = g.Connection, g.Generation+1, now, now
	next.Created = cmp.Or(g.Created, now)
	if tr.RefreshToken == "" {
		next.Unrefreshable = g.Unrefreshable // one more consent without: still counting
	}
	if len(g.StepUp) > 0 {
		// A step-up consent: a refusal after it may be one more repeat.
		next.StepUpRepeats = g.StepUpRepeats
	}
	*g = next
	return nil
}

// grantOf is the grant record that a flow and its token response make,
// without connection state.
func grantOf(f *flowRecord, tr *tokenResponse) grantRecord {
	scopes := tr.Scopes
	if scopes == nil {
		scopes = f.Scopes // RFC 6749 §5.1: absent means as requested
	}
	return grantRecord{
		Issuer: f.Issuer, ClientKind: f.ClientKind, ClientID: f.ClientID,
		TokenEndpoint: f.TokenEndpoint, RevocationEndpoint: f.RevocationEndpoint,
		Resource: f.Resource, Audience: f.Audience, Binding: f.Binding,
		AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, Expiry: tr.Expiry,
		TokenType: tr.tokenType(), DPoPKey: tr.encodedKey(),
		Scopes: scopes, Requested: f.Scopes, Account: tr.accountFor(f.Issuer, f.ClientID),
	}
}
