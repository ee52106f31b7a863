package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// refreshBackoff is how long a refresh failure that may pass is
// returned again without a new request.
const refreshBackoff = 5 * time.Second

// failure is a refresh failure and when it happened.
type failure struct {
	at  time.Time
	err error
}

// refresh gets a fresh access token for subject, with at most one refresh
// in flight per grant: concurrent callers share it. The refresh runs to
// its end even if the caller that began it goes away, since an answer
// that is dropped may have rotated the refresh token (A8).
//
// After a failure that may pass (the server is down), the same error is
// returned for refreshBackoff without asking again, so that a burst of
// calls does not become a burst of requests.
func (m *Manager) refresh(ctx context.Context, c *connector, subject, refused string) (Token, error) {
	if f, ok := c.failures.Load(subject); ok && m.now().Sub(f.(failure).at) < refreshBackoff {
		return Token{}, f.(failure).err
	}
	ch := m.refreshes.DoChan(grantKey(c.id, subject), func() (any, error) {
		// The wait for another instance's lease, then the refresh.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.leaseWait+callTimeout)
		defer cancel()
		tok, err := m.refreshGrant(ctx, c, subject, refused)
		var ce *ConsentError
		// A refused client credentials request is a ConsentError too, but
		// asking again at once would be refused again.
		if err != nil && (!errors.As(err, &ce) || c.clientCredentials()) {
			c.failures.Store(subject, failure{at: m.now(), err: err})
		} else {
			c.failures.Delete(subject)
		}
		return tok, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// refreshGrant refreshes the grant under its lock and its lease. It
// first reads the grant again: a refresh that ended meanwhile (here or in
// another instance) makes this one needless. The new tokens are stored
// before the access token is handed out, so a rotated refresh token is
// never lost.
func (m *Manager) refreshGrant(ctx context.Context, c *connector, subject, refused string) (Token, error) {
	var run refreshRun
	var spent *grantRecord // tokens this refresh got, if another instance's write won
	e, err := m.changeGrant(ctx, c, subject, true, func(g *grantRecord) (bool, []store.Write, error) {
		if spent != nil {
			m.abandon(ctx, c, subject, *spent, g)
			spent, run = nil, refreshRun{}
		}
		was := g.Connection.State
		changed, err := m.refreshIfNeeded(ctx, c, subject, refused, g, &run)
		run.stopped = was == connectors.StateActive && g.Connection.State != connectors.StateActive
		if run.outcome == OutcomeOK {
			spent = new(grantRecord)
			*spent = *g
		}
		return changed, nil, err
	})
	m.reportRefresh(c, subject, &run, err)
	if err != nil {
		return Token{}, err
	}
	return e.token, nil // the published grant's
}

// refreshIfNeeded refreshes g unless it needs no refresh (or cannot
// have one).
func (m *Manager) refreshIfNeeded(ctx context.Context, c *connector, subject, refused string, g *grantRecord, run *refreshRun) (bool, error) {
	if c.clientCredentials() {
		return m.fetchIfNeeded(ctx, c, subject, refused, g, run)
	}
	now := m.now()
	switch {
	case g.Connection.State != connectors.StateActive && !g.retrying():
		return false, c.consentError(g.Connection)
	case g.usable(now) && !isRefused(g.authorization(), refused):
		return false, nil
	case g.RefreshToken == "":
		return m.noRefreshToken(c, subject, g, refused, run)
	}
	return m.refreshWith(ctx, c, subject, g, run)
}

// retrying reports whether g is a connection whose refresh failed while
// the provider was down: expired, with the refresh token kept, so that
// the next call tries again.
func (r *grantRecord) retrying() bool {
	return r.Connection.State == connectors.StateExpired && r.RefreshToken != ""
}

// Reasons a connection shows, in words that say what to do. They are
// mcpgate's own: a provider's error_description or body never goes into
// a reason, which users and agents read; its RFC 6749 error code, a
// checked token (safeCode), may.
const (
	reasonRefused     = "the provider refused the refresh token (invalid_grant): it was revoked there, or it expired; reconnect"
	reasonUnreachable = "the provider could not be reached; mcpgate retries"
	reasonReregister  = "the provider no longer knows mcpgate's registered client (invalid_client): reconnect, and mcpgate registers it again"
	reasonMalformed   = "the provider answered a token refresh with a malformed token response: ask an admin"
	reasonNoRefresh   = "the provider issues no refresh token to mcpgate's client, so the connection ends each time its access token expires: " +
		"ask an admin to enable refresh tokens for this client (the offline_access scope, or the refresh_token grant at the provider)"
)

// noRefreshToken ends g, whose access token expired or was refused, with
// no refresh token to renew it. An access token given a lifetime needs
// one to outlive it: the first time it expires without one, the
// connection is expired, since a consent may bring one; when the consent
// after that brought none either, the provider does not issue them to
// this client, and the connection is misconfigured, so that no one is
// sent to reconnect in a loop (connectors.StateMisconfigured). A token
// without a lifetime that the upstream refused needs a consent only.
func (m *Manager) noRefreshToken(c *connector, subject string, g *grantRecord, refused string, run *refreshRun) (bool, error) {
	event, reason := connectors.EventExpire, "the access token expired and the provider issued no refresh token; reconnect"
	if refused != "" {
		reason = "the upstream refused the access token and the provider issued no refresh token; reconnect"
	}
	if !g.Expiry.IsZero() && !g.usable(m.now()) {
		if g.Unrefreshable++; g.Unrefreshable > 1 {
			event, reason = connectors.EventMisconfigure, reasonNoRefresh
		}
	}
	g.dropTokens()
	run.ended(OutcomeFailed, reason)
	return true, m.fail(c, subject, g, event, reason)
}

// markUnreachable notes on g that a refresh that was due failed because the
// provider was down: the connection is expired, its tokens kept, and the
// next call tries again (after refreshBackoff). Nothing is revoked or
// dropped: the grant is likely still good at the provider. It reports
// whether g changed.
func (m *Manager) markUnreachable(c *connector, subject string, g *grantRecord) bool {
	if g.Connection.State == connectors.StateExpired && g.Connection.Retrying {
		return false
	}
	if err := g.apply(connectors.EventUnreachable, reasonUnreachable, m.now()); err != nil {
		return false
	}
	m.logEvent(c, subject, g, connectors.EventUnreachable)
	return true
}

// abandon handles the tokens that a refresh got, spent, when another
// write of the grant won the race to the store (possible only when that
// write was made without the grant's lease, as a disconnect may be): if
// the grant is no longer active, they are revoked, since nothing holds
// them; else they are dropped, and the grant as written stands.
func (m *Manager) abandon(ctx context.Context, c *connector, subject string, spent grantRecord, g *grantRecord) {
	if g.Connection.State == connectors.StateActive {
		m.log.Debug("dropping a refresh that another write of the grant overtook", zap.String("connector", c.id), zap.String("user", subject))
		return
	}
	m.revoked(c.id, subject, m.revoke(ctx, c, spent))
}

// refreshRun is how one refresh of a grant ended, for the event ("" when
// none was needed).
type refreshRun struct {
	outcome, detail string
	// stopped: the refresh took the connection out of active.
	stopped bool
}

// ended records how the refresh ended.
func (r *refreshRun) ended(outcome, detail string) { r.outcome, r.detail = outcome, detail }

// reportRefresh tells of a refresh that was made. A refresh whose tokens
// could not be stored failed, whatever the server said.
func (m *Manager) reportRefresh(c *connector, subject string, run *refreshRun, err error) {
	if run.outcome == "" {
		return
	}
	if run.outcome == OutcomeOK && err != nil {
		run.ended(OutcomeFailed, err.Error())
	}
	m.emit(Event{Kind: EventRefresh, Connector: c.id, User: subject, Outcome: run.outcome, Detail: run.detail, Stopped: run.stopped})
}

// refreshWith makes the refresh request for g and applies its answer.
func (m *Manager) refreshWith(ctx context.Context, c *connector, subject string, g *grantRecord, run *refreshRun) (bool, error) {
	cl, err := m.recordedClient(ctx, c, g.Issuer, g.ClientKind, g.ClientID)
	if err != nil {
		g.dropTokens()
		run.ended(OutcomeInvalidGrant, err.Error())
		return true, m.fail(c, subject, g, connectors.EventInvalidGrant, err.Error())
	}
	// RFC 8707 §2.2: the resource again. No scope: the same as granted
	// (RFC 6749 §6); more scope takes a new consent (stepUp).
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}, "resource": {g.Resource}}
	if g.Audience != "" {
		form.Set("audience", g.Audience)
	}
	// The grant's lease (leaseTTL) outlasts the request.
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	tr, err := m.dpopTokenCall(callCtx, c, cl, g.TokenEndpoint, form, g.DPoPKey, g.AccessToken)
	cancel()
	switch code := errorCode(err); {
	case code == "invalid_grant" && m.adoptRotated(ctx, c, subject, g):
		if g.usable(m.now()) {
			return false, nil
		}
		err := fmt.Errorf("refreshing the token of %s: another instance rotated the refresh token meanwhile; try again", c.id)
		run.ended(OutcomeFailed, err.Error())
		return false, err
	case code == "invalid_grant":
		g.dropTokens()
		run.ended(OutcomeInvalidGrant, "the authorization server refused the refresh token (invalid_grant)")
		return true, m.fail(c, subject, g, connectors.EventInvalidGrant, reasonRefused)
	case code == "invalid_client" || code == "unauthorized_client":
		return true, m.clientRefused(ctx, c, subject, g, code, run)
	case code == "invalid_target":
		run.ended(OutcomeFailed, sanitize("the authorization server does not accept the resource "+g.Resource+" (invalid_target)", maxDescription))
		return true, m.fail(c, subject, g, connectors.EventFail, run.detail)
	case providerDown(err):
		run.ended(OutcomeFailed, fmt.Sprintf("refreshing the token of %s: %s: %v", c.id, reasonUnreachable, err))
		return m.markUnreachable(c, subject, g), withhold(err, "refreshing the token of %s: %s%s", c.id, reasonUnreachable, statusOf(err))
	case refusedRefresh(err) || errors.Is(err, errMalformed):
		// Asking again would be refused again: the connection stops,
		// saying why, rather than stay active while every call fails.
		run.ended(OutcomeFailed, fmt.Sprintf("refreshing the token of %s: %v", c.id, err))
		return true, m.fail(c, subject, g, connectors.EventFail, refreshFailure(err))
	case err != nil:
		err = fmt.Errorf("refreshing the token of %s: %w", c.id, err)
		run.ended(OutcomeFailed, err.Error())
		return false, err
	}
	if err := m.refreshed(g, tr); err != nil {
		run.ended(OutcomeFailed, err.Error())
		return false, err
	}
	run.ended(OutcomeOK, "")
	m.log.Debug("token refreshed", zap.String("connector", c.id), zap.String("user", subject), zap.String("issuer", g.Issuer))
	return true, nil
}

// clientRefused ends g, whose refresh the authorization server refused
// because it no longer accepts mcpgate's client (code is invalid_client or
// unauthorized_client). A registered client (DCR) that it no longer knows
// is forgotten and registered anew at the next consent, which is what
// the user is told to give; any other client is the admin's to fix (a
// static client's secret or grant types, the client metadata document),
// and no consent helps until then: the connection is misconfigured, so
// that no one is sent to reconnect in a loop. The tokens are dropped:
// nothing can use them without a client.
func (m *Manager) clientRefused(ctx context.Context, c *connector, subject string, g *grantRecord, code string, run *refreshRun) error {
	if g.ClientKind == RegistrationDCR {
		if err := m.store.Delete(ctx, clientKey(c.id, g.Issuer)); err != nil {
			m.log.Error("forgetting a refused client", zap.String("connector", c.id), zap.Error(err))
		}
	}
	g.dropTokens()
	run.ended(OutcomeInvalidGrant, "the authorization server no longer accepts mcpgate's client ("+code+")")
	if g.ClientKind == RegistrationDCR && code == "invalid_client" {
		return m.fail(c, subject, g, connectors.EventInvalidGrant, reasonReregister)
	}
	reason := "the provider no longer accepts mcpgate's client (" + code + "): ask an admin to check the connector's client at the provider"
	return m.fail(c, subject, g, connectors.EventMisconfigure, reason)
}

// refusedRefresh reports whether err is the authorization server's
// refusal of a refresh, other than for the provider being down: an
// error response (RFC 6749 §5.2), or an answer that is not a success.
func refusedRefresh(err error) bool {
	_, ok := errors.AsType[*endpointError](err)
	return ok && !providerDown(err)
}

// refreshFailure is the reason of a connection whose refresh failed with
// err, refused or malformed: the error code names the refusal, or the
// HTTP status where it has none; the provider's description does not.
func refreshFailure(err error) string {
	ee, ok := errors.AsType[*endpointError](err)
	if !ok {
		return reasonMalformed
	}
	what := ee.code
	if what == "" {
		what = fmt.Sprintf("HTTP %d", ee.status)
	}
	return "the provider refused to refresh the token (" + what + "): ask an admin"
}

// refreshed puts the answer of a refresh into g.
func (m *Manager) refreshed(g *grantRecord, tr *tokenResponse) error {
	now := m.now()
	g.AccessToken, g.Expiry, g.Obtained, g.Updated = tr.AccessToken, tr.Expiry, now, now
	g.TokenType = tr.tokenType() // the key stays: the same one proves every refresh
	if tr.RefreshToken != "" {
		g.RefreshToken = tr.RefreshToken // rotated: the old one is dead (OAuth 2.1 §4.3.2)
	}
	if tr.Scopes != nil {
		g.Scopes = tr.Scopes
	}
	if a := tr.accountFor(g.Issuer, g.ClientID); a != nil {
		g.Account = a
	}
	return g.apply(connectors.EventRefresh, "", now)
}

// adoptWait is how long an invalid_grant waits for another instance's
// rotation to reach the store.
const adoptWait = 500 * time.Millisecond

// adoptRotated handles an invalid_grant that another instance (or a
// Manager of another config generation) caused by rotating the refresh
// token while this one was refreshing: if the store holds, or soon holds,
// another refresh token for an active grant, g becomes that record.
func (m *Manager) adoptRotated(ctx context.Context, c *connector, subject string, g *grantRecord) bool {
	deadline := time.Now().Add(adoptWait)
	for {
		stored, err := m.readGrant(ctx, grantKey(c.id, subject))
		if err == nil && stored.rec.Connection.State == connectors.StateActive && stored.rec.RefreshToken != "" && stored.rec.RefreshToken != g.RefreshToken {
			*g = stored.rec
			return true
		}
		if err != nil || time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(adoptWait / 20):
		}
	}
}

// fail moves g through event e with reason, logs it, and returns the
// ConsentError the caller sees.
func (m *Manager) fail(c *connector, subject string, g *grantRecord, e connectors.Event, reason string) error {
	if err := g.apply(e, reason, m.now()); err != nil {
		return err
	}
	m.logEvent(c, subject, g, e)
	return c.consentError(g.Connection)
}

// maxStepUpRepeats is how many consents in a row may ask again for
// scopes that the upstream still refuses: with the first consent, three
// authorization requests at most, as the MCP authorization specification's
// scope challenge handling asks clients to bound.
const maxStepUpRepeats = 2

// stepUp handles a 403 insufficient_scope: the next consent asks
// for the union of what was asked before and what the upstream wants, and
// the connection needs that consent. It never refreshes: a refresh cannot
// widen a grant. A refusal that wants nothing the last consent did not ask
// for is a repeat: consent again would ask the same. Past
// maxStepUpRepeats repeats in a row the connection breaks instead
// (StatusMisconfigured), so that agents are not sent to consent in a
// loop; a person can still start a consent.
func (m *Manager) stepUp(ctx context.Context, c *connector, subject string, wanted []string) error {
	_, err := m.withGrant(ctx, c, subject, func(g *grantRecord) (bool, error) {
		if g.Connection.State != connectors.StateActive {
			return false, c.consentError(g.Connection)
		}
		g.StepUp = union(g.Requested, g.Scopes, g.StepUp, wanted)
		g.StepUpRepeats = stepUpRepeats(g, wanted)
		reason := "the upstream needs more scope"
		if len(wanted) > 0 {
			reason += ": " + strings.Join(wanted, " ")
		}
		if g.StepUpRepeats > maxStepUpRepeats {
			reason += fmt.Sprintf(" and refused %d consents in a row that asked for it; consent again will not help until the upstream or the authorization server changes", g.StepUpRepeats)
			return true, m.fail(c, subject, g, connectors.EventFail, sanitize(reason, 512))
		}
		if g.StepUpRepeats > 0 && len(wanted) > 0 {
			reason += " (" + repeatNote(g, wanted) + ")"
		}
		return true, m.fail(c, subject, g, connectors.EventInvalidGrant, sanitize(reason, 512))
	})
	return err
}

// stepUpRepeats is g's count of repeats after a refusal that wants
// wanted: one more when the last consent asked for all of it, else none.
func stepUpRepeats(g *grantRecord, wanted []string) int {
	if !containsAll(g.Requested, wanted) {
		return 0
	}
	return g.StepUpRepeats + 1
}

// repeatNote says why the last consent did not bring what is wanted.
func repeatNote(g *grantRecord, wanted []string) string {
	if containsAll(g.Scopes, wanted) {
		return "the last consent asked for it and it was granted"
	}
	return "the last consent asked for it, but it was not granted"
}

// containsAll reports whether every scope of want is in have.
func containsAll(have, want []string) bool {
	return !slices.ContainsFunc(want, func(s string) bool { return !slices.Contains(have, s) })
}

// logEvent logs a connection event, without secrets.
func (m *Manager) logEvent(c *connector, subject string, g *grantRecord, e connectors.Event) {
	m.log.Info("connection event", zap.String("connector", c.id), zap.String("user", subject),
		zap.String("issuer", g.Issuer), zap.String("event", string(e)))
}
