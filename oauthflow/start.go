package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// Start begins a consent for connector and returns the authorization URL
// to send the browser to. user is who starts it: the callback must come
// from the same user (an empty user, such as an admin API call, binds to
// no one, and per-user connectors need one). redirectURL, if not empty, is
// where the browser goes after the callback; it must be on PublicURL's
// origin or an allowed one, else Start returns ErrBadRedirect. A
// configuration that cannot work returns an ErrMisconfigured error and
// marks the connection so. Each user's pending consents are bounded: the
// newest win, and older ones beyond the bounds stop working. When too
// many consents are pending in all, Start returns ErrTooManyConsents.
func (m *Manager) Start(ctx context.Context, connector, user, redirectURL string) (string, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return "", err
	}
	u, err := m.start(ctx, c, user, redirectURL)
	outcome, detail := outcomeOf(err)
	m.emit(Event{Kind: EventConsentStart, Connector: c.id, User: user, Outcome: outcome, Detail: detail})
	return u, err
}

// start is Start once the connector is known. A disabled connector
// starts none: a consent would store tokens for a connector that an admin
// turned off.
func (m *Manager) start(ctx context.Context, c *connector, user, redirectURL string) (string, error) {
	if c.cfg.Disabled {
		return "", connectors.DisabledError(c.id)
	}
	if c.clientCredentials() {
		return "", fmt.Errorf("%w: %s gets its token with the client credentials grant, at its first call", ErrNoConsent, c.id)
	}
	subject, err := c.subject(user)
	if err != nil {
		return "", err
	}
	if err := m.checkRedirect(redirectURL); err != nil {
		return "", err
	}
	as, cl, err := m.prepare(ctx, c, subject)
	if err != nil {
		return "", err
	}
	var stepUp []string
	_, err = m.withGrant(ctx, c, subject, func(g *grantRecord) (bool, error) {
		stepUp = g.StepUp
		if g.Connection.State == connectors.StateError {
			g.StepUpRepeats = 0 // a person tries again past the limit
		}
		return true, g.apply(connectors.EventStart, "", m.now())
	})
	if err != nil {
		return "", fmt.Errorf("starting consent for %s: %w", c.id, err)
	}
	f := m.newFlow(c, as, cl, subject, user, redirectURL, union(c.scopes(as), stepUp))
	id := newFlowID()
	u, err := authURL(as.AuthorizationEndpoint, cl, f, stateHandle(m.stateKey, id))
	if err != nil {
		return "", c.misconfigured(err.Error())
	}
	if err := m.putFlow(ctx, f, b64.EncodeToString(id)); err != nil {
		return "", err
	}
	m.log.Info("consent started", zap.String("connector", c.id), zap.String("user", user),
		zap.String("issuer", as.Issuer), zap.String("client", cl.Kind))
	return u, nil
}

// prepare finds the authorization server and the client to use. A
// misconfiguration is recorded on the connection, with its reason.
func (m *Manager) prepare(ctx context.Context, c *connector, subject string) (*authServer, client, error) {
	as, err := m.server(ctx, c)
	var cl client
	if err == nil {
		cl, err = m.client(ctx, c, as)
	}
	var mc *misconfigured
	if errors.As(err, &mc) {
		_, werr := m.withGrant(ctx, c, subject, func(g *grantRecord) (bool, error) {
			now := m.now()
			return true, errors.Join(g.apply(connectors.EventStart, "", now), g.apply(connectors.EventFail, mc.reason, now))
		})
		if werr != nil {
			m.log.Error("recording a misconfiguration", zap.String("connector", c.id), zap.Error(werr))
		}
	}
	return as, cl, err
}

// scopes is what a consent asks for: the configured scopes, else what
// discovery suggested.
func (c *connector) scopes(as *authServer) []string {
	if c.cfg.Scopes != nil {
		return c.cfg.Scopes
	}
	return as.Scopes
}

// newFlow records everything the callback will need.
func (m *Manager) newFlow(c *connector, as *authServer, cl client, subject, user, redirectURL string, scopes []string) *flowRecord {
	return &flowRecord{
		Connector: c.id, Subject: subject, Initiator: user,
		Issuer: as.Issuer, IssRequired: as.IssRequired,
		TokenEndpoint: as.TokenEndpoint, RevocationEndpoint: as.RevocationEndpoint,
		ClientKind: cl.Kind, ClientID: cl.ID,
		Verifier: oauth2.GenerateVerifier(), RedirectURI: m.callback, RedirectURL: redirectURL,
		Resource: as.Resource, Audience: c.cfg.Audience, Scopes: scopes,
		Binding: c.cfg.Binding, Created: m.now(), DPoP: c.dpopUse(as),
	}
}

// ownParams are the parameters mcpgate sets on the authorization URL;
// copies already in the endpoint's query are removed, so that each appears
// exactly once (RFC 6749 §3.1).
var ownParams = []string{"client_id", "redirect_uri", "response_type", "state", "scope",
	"code_challenge", "code_challenge_method", "resource", "audience"}

// authURL builds the authorization request: the endpoint's own query, then
// mcpgate's parameters, PKCE S256 and the RFC 8707 resource.
func authURL(endpoint string, cl client, f *flowRecord, state string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("authorization_endpoint: %v", err)
	}
	q := u.Query()
	for _, p := range ownParams {
		q.Del(p)
	}
	u.RawQuery, u.Fragment = q.Encode(), ""
	cfg := oauth2.Config{ClientID: cl.ID, Endpoint: oauth2.Endpoint{AuthURL: u.String()}, RedirectURL: f.RedirectURI, Scopes: f.Scopes}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier), oauth2.SetAuthURLParam("resource", f.Resource)}
	if f.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", f.Audience))
	}
	return cfg.AuthCodeURL(state, opts...), nil
}

// union returns the scopes of every list, each once, in order of first
// appearance.
func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
