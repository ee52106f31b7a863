package oauthflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// A connector under the client credentials grant (RFC 6749 §4.4) gets its
// token with the static client's own credentials: no one consents, the
// connection is shared, and the token is fetched on first use and fetched
// again before it expires, on the refresh path (one fetch in flight per
// connector, under the grant's lease across instances), so that it is
// stored sealed and handed out as any other. A person's Connect means
// nothing for it (Start refuses); Disconnect revokes the token in hand,
// as after a leak, and the next call fetches a new one.

// The grants of Config.Grant.
const (
	// GrantAuthorizationCode: a person consents in a browser. The default.
	GrantAuthorizationCode = "authorization_code"
	// GrantClientCredentials: the static client gets tokens itself.
	GrantClientCredentials = "client_credentials"
)

// ErrNoConsent means a connector gets its tokens without consent (the
// client credentials grant), so there is none to start.
var ErrNoConsent = errors.New("the connector needs no consent")

// reasonClientCredentials is the reason of a connection whose client
// credentials the authorization server refused.
const reasonClientCredentials = "the provider refused mcpgate's client credentials (%s): ask an admin to check the connector's client_id, " +
	"its secret or key, and that the client may use the client_credentials grant"

// ValidateGrant checks the grant and, for client credentials, what it
// needs: a static client that authenticates, and shared consent, since its
// one token serves every granted user. Validate runs it; a config parser
// can run it alone.
func (c Config) ValidateGrant() error {
	switch c.Grant {
	case "", GrantAuthorizationCode:
		return nil
	case GrantClientCredentials:
	default:
		return fmt.Errorf("grant %q must be authorization_code or client_credentials", c.Grant)
	}
	switch {
	case c.ClientID == "":
		return errors.New("grant client_credentials needs a static client: client_id with its client_secret or client_key")
	case c.Registration != "" && c.Registration != RegistrationAuto && c.Registration != RegistrationStatic:
		return fmt.Errorf("grant client_credentials needs a static client, but registration is %s", c.Registration)
	case c.TokenAuthMethod == AuthMethodNone || (c.TokenAuthMethod == "" && c.ClientSecret == "" && c.ClientKey == ""):
		// RFC 6749 §4.4: only a confidential client may use the grant.
		return errors.New("grant client_credentials needs the client to authenticate: set client_secret or client_key (is its placeholder set?)")
	case c.Consent != Shared:
		return errors.New("grant client_credentials needs consent shared: its one token serves every granted user")
	}
	return nil
}

// Grant returns how connector gets its tokens: GrantAuthorizationCode or
// GrantClientCredentials; "" for a connector this Manager does not know.
func (m *Manager) Grant(connector string) string {
	c := m.conns[connector]
	if c == nil {
		return ""
	}
	return cmp.Or(c.cfg.Grant, GrantAuthorizationCode)
}

// clientCredentials reports whether c gets its tokens with the client
// credentials grant.
func (c *connector) clientCredentials() bool { return c.cfg.Grant == GrantClientCredentials }

// fetchIfNeeded is refreshIfNeeded for a connector under the client
// credentials grant: whatever state the connection is in, a token that is
// not usable, or that the upstream refused, is fetched again. A disabled
// connector fetches none.
func (m *Manager) fetchIfNeeded(ctx context.Context, c *connector, subject, refused string, g *grantRecord, run *refreshRun) (bool, error) {
	if c.cfg.Disabled {
		return false, connectors.DisabledError(c.id)
	}
	if g.Connection.State == connectors.StateActive && c.fits(g) && g.usable(m.now()) && !isRefused(g.authorization(), refused) {
		return false, nil
	}
	return m.fetchClientToken(ctx, c, subject, g, run)
}

// fetchClientToken asks the token endpoint for a token with the client's
// credentials (clientCredentialsForm) and puts it into g. A refusal ends the
// connection as misconfigured in mcpgate's own words; a provider that is
// down changes nothing, and the next call tries again after
// refreshBackoff.
func (m *Manager) fetchClientToken(ctx context.Context, c *connector, subject string, g *grantRecord, run *refreshRun) (bool, error) {
	as, err := m.server(ctx, c)
	var cl client
	if err == nil {
		cl, err = m.client(ctx, c, as)
	}
	if mc, ok := errors.AsType[*misconfigured](err); ok {
		run.ended(OutcomeFailed, mc.reason)
		return m.fetchFailed(c, subject, g, mc.reason)
	}
	if err != nil {
		run.ended(OutcomeFailed, err.Error())
		return false, err
	}
	key, err := c.clientDPoPKey(g, as)
	if err != nil {
		run.ended(OutcomeFailed, err.Error())
		return false, err
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	tr, err := m.dpopTokenCall(callCtx, c, cl, as.TokenEndpoint, c.clientCredentialsForm(as), key)
	cancel()
	if err != nil {
		return m.fetchRefused(c, subject, g, err, run)
	}
	if err := m.fetched(g, as, cl, c, c.scopes(as), tr); err != nil {
		run.ended(OutcomeFailed, err.Error())
		return false, err
	}
	run.ended(OutcomeOK, "")
	m.log.Debug("token fetched with client credentials", zap.String("connector", c.id), zap.String("issuer", as.Issuer))
	return true, nil
}

// diagnoseClientCredentials asks the token endpoint for a token as a call
// would, and says whether it was issued. The token is neither stored nor
// shown; it expires unused.
func (m *Manager) diagnoseClientCredentials(ctx context.Context, c *connector, as *authServer, cl client) Step {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	key, err := newDPoPKeyIf(c.dpopUse(as))
	if err == nil {
		_, err = m.dpopTokenCall(ctx, c, cl, as.TokenEndpoint, c.clientCredentialsForm(as), key)
	}
	if err != nil {
		return Step{Name: StepClientCredentials, Detail: sanitize("the token endpoint issued no token: "+err.Error(), maxDescription),
			Fix: "check client_id and client_secret, and that the client may use the client_credentials grant at " + as.Issuer}
	}
	return Step{Name: StepClientCredentials, OK: true, Detail: "the token endpoint " + as.TokenEndpoint + " issued a token to client " + cl.ID}
}

// clientCredentialsForm is the token request of the grant, with the
// resource (RFC 8707), the scopes and the audience as a consent asks.
func (c *connector) clientCredentialsForm(as *authServer) url.Values {
	form := url.Values{"grant_type": {GrantClientCredentials}, "resource": {as.Resource}}
	if scopes := c.scopes(as); len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if c.cfg.Audience != "" {
		form.Set("audience", c.cfg.Audience)
	}
	return form
}

// fetchRefused handles a failed token request: a provider that is down
// (or did not answer) changes nothing; any other failure is the admin's
// to fix, since asking again would be refused again.
func (m *Manager) fetchRefused(c *connector, subject string, g *grantRecord, err error, run *refreshRun) (bool, error) {
	if providerDown(err) {
		run.ended(OutcomeFailed, fmt.Sprintf("fetching the token of %s: %s: %v", c.id, reasonUnreachable, err))
		return false, withhold(err, "fetching the token of %s: %s%s", c.id, reasonUnreachable, statusOf(err))
	}
	what := errorCode(err)
	if what == "" {
		if ee, ok := errors.AsType[*endpointError](err); ok {
			what = fmt.Sprintf("HTTP %d", ee.status)
		}
	}
	reason := reasonMalformed
	if what != "" {
		reason = fmt.Sprintf(reasonClientCredentials, what)
	}
	run.ended(OutcomeFailed, fmt.Sprintf("fetching the token of %s: %v", c.id, err))
	return m.fetchFailed(c, subject, g, reason)
}

// fetchFailed ends g with reason: its tokens dropped, the connection in
// error, which users see as misconfigured.
func (m *Manager) fetchFailed(c *connector, subject string, g *grantRecord, reason string) (bool, error) {
	g.dropTokens()
	if err := g.apply(connectors.EventStart, "", m.now()); err != nil {
		return false, err
	}
	return true, m.fail(c, subject, g, connectors.EventFail, reason)
}

// fetched puts the answer of a client credentials request into g, which
// becomes active. A refresh token, which the server should not issue for
// this grant (RFC 6749 §4.4.3), is not kept: the next token is fetched
// the same way. A connection that was not active starts a new generation,
// as a consent does.
func (m *Manager) fetched(g *grantRecord, as *authServer, cl client, c *connector, scopes []string, tr *tokenResponse) error {
	now := m.now()
	granted := tr.Scopes
	if granted == nil {
		granted = scopes // RFC 6749 §5.1: absent means as requested
	}
	generation := g.Generation
	if g.Connection.State != connectors.StateActive || !c.fits(g) {
		generation++
		if err := g.apply(connectors.EventStart, "", now); err != nil {
			return err
		}
	}
	if err := g.apply(connectors.EventGrant, "", now); err != nil {
		return err
	}
	*g = grantRecord{
		Connection: g.Connection, Generation: generation, Created: cmp.Or(g.Created, now), Obtained: now, Updated: now,
		Issuer: as.Issuer, ClientKind: cl.Kind, ClientID: cl.ID,
		TokenEndpoint: as.TokenEndpoint, RevocationEndpoint: as.RevocationEndpoint,
		Resource: as.Resource, Audience: c.cfg.Audience, Binding: c.cfg.Binding,
		AccessToken: tr.AccessToken, Expiry: tr.Expiry, TokenType: tr.tokenType(), DPoPKey: tr.encodedKey(),
		Scopes: granted, Requested: scopes,
	}
	return nil
}

// clientDPoPKey is the DPoP key (RFC 9449) the next token of g from as
// is bound to, "" for none: as a consent decides (dpopUse: the config,
// else whether as advertises ES256 proofs), the connection's own key
// while it is active and fits, as a refresh keeps its key, else a new
// one.
func (c *connector) clientDPoPKey(g *grantRecord, as *authServer) (string, error) {
	use := c.dpopUse(as)
	if use && g.DPoPKey != "" && g.Connection.State == connectors.StateActive && c.fits(g) {
		return g.DPoPKey, nil
	}
	return newDPoPKeyIf(use)
}

// clientConnection is the connection of a client credentials connector
// as users see it: ready unless fetching its token failed, since a call
// fetches one whenever it has none.
func clientConnection(conn connectors.Connection) connectors.Connection {
	if conn.State == connectors.StateError || conn.State == connectors.StateMisconfigured {
		return conn
	}
	return connectors.Connection{State: connectors.StateActive, Since: conn.Since}
}
