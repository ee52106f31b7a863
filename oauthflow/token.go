package oauthflow

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// TokenRequest asks for the credential of one caller at one connector.
type TokenRequest struct {
	// Connector is the connector's id.
	Connector string
	// User is the caller's identity; ignored under shared consent.
	User string
	// Refused is the Authorization value that the upstream refused (401,
	// or 403 insufficient_scope), or empty. If it is the current token,
	// the token is refreshed; if a refresh already replaced it, the new
	// token is the answer. Secret.
	Refused string
	// Challenge is the WWW-Authenticate header of that refusal.
	Challenge string
}

// Token is a credential to present upstream. It prints and marshals with
// Header redacted.
type Token struct {
	// Header is the Authorization header value, "Bearer …", or "DPoP …"
	// for a token bound to a key (Bound). Secret.
	Header string `secret:"true"`
	// Key names the grant without revealing it, for partitioning caches:
	// it changes when the grant does (a new consent), not on refresh.
	Key string
	// dpop proves the requests of a bound token; nil for a bearer one.
	dpop *dpopBinding
}

type tokenView Token

// Format prints the token with Header redacted.
func (t Token) Format(f fmt.State, verb rune) { formatRedacted(f, verb, tokenView(t)) }

// MarshalJSON encodes the token with Header redacted.
func (t Token) MarshalJSON() ([]byte, error) { return marshalRedacted(tokenView(t)) }

// Token returns the credential for req. The hot path reads memory only;
// an expired or refused token is refreshed, with at most one refresh in
// flight per grant. It returns a *ConsentError when someone must consent
// first, and other errors when the authorization server cannot be reached.
func (m *Manager) Token(ctx context.Context, req TokenRequest) (Token, error) {
	c, err := m.lookup(req.Connector)
	if err != nil {
		return Token{}, err
	}
	subject, err := c.subject(req.User)
	if err != nil {
		return Token{}, err
	}
	if e := c.cached(subject); e != nil && req.Refused == "" && e.fresh(m.now()) {
		return e.token, nil
	}
	return m.slowToken(ctx, c, subject, req)
}

// slowToken is Token past the memory: load, refusal handling, refresh.
func (m *Manager) slowToken(ctx context.Context, c *connector, subject string, req TokenRequest) (Token, error) {
	e, err := m.load(ctx, c, subject)
	if err != nil {
		return Token{}, err
	}
	if c.clientCredentials() {
		// No consent to wait for: a token that does not serve is fetched.
		if req.Refused == "" && e.fresh(m.now()) {
			return e.token, nil
		}
		return m.refresh(ctx, c, subject, req.Refused)
	}
	if !c.fits(&e.rec) || (e.rec.Connection.State != connectors.StateActive && !e.rec.retrying()) {
		return Token{}, c.consentError(c.connection(&e.rec))
	}
	now := m.now()
	if req.Refused == "" {
		if e.fresh(now) {
			return e.token, nil
		}
		return m.refresh(ctx, c, subject, "")
	}
	// The challenge is the upstream's word, only a hint: one that does
	// not parse is no challenge.
	ch, _ := discovery.ParseChallenge(req.Challenge)
	if ch != nil && ch.Error == "insufficient_scope" {
		// What one call wants is this grant's step-up, not what every
		// consent asks for: those keep the scope of the 401 challenge
		// (MCP authorization, scope selection strategy).
		return Token{}, m.stepUp(ctx, c, subject, ch.Scope)
	}
	if ch != nil {
		c.remember(ch)
	}
	if e.fresh(now) && !isRefused(e.token.Header, req.Refused) {
		return e.token, nil // the refusal was of the token this one replaced
	}
	return m.refresh(ctx, c, subject, req.Refused)
}

// isRefused reports whether header is the refused Authorization value,
// in constant time.
func isRefused(header, refused string) bool {
	return refused != "" && subtle.ConstantTimeCompare([]byte(header), []byte(refused)) == 1
}

// remember keeps a 401's challenge for the next discovery, which runs
// again from it. One without scope (an expired token's invalid_token, say)
// keeps the scope of the challenge before it: the scope to ask for is the
// first 401's (MCP authorization, scope selection strategy), and a refusal
// of one token does not change it.
func (c *connector) remember(ch *discovery.Challenge) {
	if prev := c.challenge.Load(); prev != nil && len(ch.Scope) == 0 {
		kept := *ch
		kept.Scope = prev.Scope
		ch = &kept
	}
	c.challenge.Store(ch)
	c.discovered.Store(nil)
}
