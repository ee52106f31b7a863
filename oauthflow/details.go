package oauthflow

import (
	"cmp"
	"context"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// Details is what an admin is shown of one connector's OAuth client and
// of one connection through it: where tokens come from, whose they are
// and where the connection stands. It holds no secret: a client secret or
// a token is shown only as whether one is stored.
type Details struct {
	// Server is the authorization server as the connector uses it now.
	Server ServerDetails `json:"server"`
	// Recorded is where the connection's tokens came from, which its
	// refreshes and revocation use whatever the server is now; nil
	// before the first consent.
	Recorded *RecordedServer `json:"recorded,omitempty"`
	// Client is mcpgate's client at the authorization server.
	Client ClientDetails `json:"client"`
	// RedirectURI is the callback every consent returns to.
	RedirectURI string `json:"redirect_uri"`
	// Grant is how the connector gets its tokens: authorization_code (a
	// person consents) or client_credentials (the client itself).
	Grant string `json:"grant"`
	// ConfiguredScopes are the scopes the connector asks for; empty: what
	// the server advertises.
	ConfiguredScopes []string `json:"configured_scopes,omitempty"`
	// Scopes were granted at the last consent or refresh;
	// RequestedScopes were asked for at the last consent.
	Scopes          []string `json:"scopes,omitempty"`
	RequestedScopes []string `json:"requested_scopes,omitempty"`
	// Account is whom the provider says the tokens are for: display only.
	Account *Account `json:"account,omitempty"`
	// Connection is the connection's state, with its reason.
	Connection connectors.Connection `json:"connection"`
	// Created is when the first consent stored tokens; Updated when the
	// latest came; Expires when the access token expires (zero: it did
	// not say, or there is none).
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	// RefreshToken reports whether a refresh token is stored: without
	// one, the connection ends when the access token expires.
	RefreshToken bool `json:"refresh_token_stored"`
	// TokenType is the stored access token's type: "DPoP" when it is
	// bound to the connection's key (RFC 9449), else "Bearer"; empty
	// without a token.
	TokenType string `json:"token_type,omitempty"`
}

// Endpoints are an authorization server's issuer and endpoints.
type Endpoints struct {
	// Issuer is the authorization server's issuer identifier (RFC 8414
	// §2), which its tokens and metadata name it by.
	Issuer string `json:"issuer,omitempty"`
	// AuthorizationEndpoint is where the user's browser is sent to
	// consent (RFC 6749 §3.1).
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint is where codes and refresh tokens are exchanged for
	// tokens (RFC 6749 §3.2).
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// RegistrationEndpoint is where mcpgate registers its client by
	// dynamic client registration (RFC 7591); empty when the server
	// offers none.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// RevocationEndpoint is where a disconnect revokes the tokens (RFC
	// 7009); empty when the server offers none.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
}

// ServerDetails is the authorization server as the connector uses it
// now: the configured endpoints over what discovery found when it last
// ran in this config generation. Details never runs discovery, so that
// showing a connector costs the authorization server nothing.
type ServerDetails struct {
	Endpoints
	// Source is SourceConfigured, SourceDiscovered (with the configured
	// endpoints over it), or SourceNotDiscovered.
	Source string `json:"source"`
	// DiscoveredAt is when discovery last ran, if it did.
	DiscoveredAt time.Time `json:"discovered_at,omitzero"`
}

// The sources of ServerDetails.
const (
	SourceConfigured    = "configured"
	SourceDiscovered    = "discovered"
	SourceNotDiscovered = "not discovered yet"
)

// RecordedServer is what a grant recorded at its consent.
type RecordedServer struct {
	// Issuer is the authorization server that issued the grant's tokens.
	Issuer string `json:"issuer"`
	// TokenEndpoint is where the grant's refresh token is sent, as it
	// was at the consent: a later change of the server's metadata does
	// not move a grant's tokens elsewhere.
	TokenEndpoint string `json:"token_endpoint"`
	// RevocationEndpoint is where a disconnect revokes the grant's
	// tokens (RFC 7009); empty when the server offered none.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// Resource is the RFC 8707 resource the tokens were issued for.
	Resource string `json:"resource,omitempty"`
	// Audience is the audience parameter the token requests carried, for
	// servers that want one.
	Audience string `json:"audience,omitempty"`
}

// ClientDetails is mcpgate's client at the authorization server: the one
// the connection's tokens were issued to, or before a consent, the one
// known to be ready (a static client, or one registered already).
type ClientDetails struct {
	// Registration is the connector's setting: auto, static, cimd or dcr.
	Registration string `json:"registration"`
	// Kind is how the client was obtained: static, cimd or dcr; empty
	// while none is known.
	Kind string `json:"kind,omitempty"`
	// ID is the client_id.
	ID string `json:"client_id,omitempty"`
	// SecretStored reports whether mcpgate holds a secret for the client.
	SecretStored bool `json:"secret_stored"`
	// KeyStored reports whether mcpgate holds a private key for a static
	// client that authenticates with private_key_jwt.
	KeyStored bool `json:"key_stored,omitempty"`
	// AuthMethod is a static client's token_endpoint_auth_method.
	AuthMethod string `json:"token_auth_method,omitempty"`
	// SecretExpires is when a registered client's secret expires.
	SecretExpires time.Time `json:"secret_expires,omitzero"`
}

// Details returns the details of connector and, for per-user consent,
// user's connection (ignored under shared consent; without a user, the
// connection's part is empty). It reads memory and the store only, never
// the authorization server. An unknown user has the zero connection.
func (m *Manager) Details(ctx context.Context, connector, user string) (Details, error) {
	c, err := m.lookup(connector)
	if err != nil {
		return Details{}, err
	}
	d := Details{Server: c.serverDetails(), RedirectURI: m.callback, ConfiguredScopes: c.cfg.Scopes, Grant: cmp.Or(c.cfg.Grant, GrantAuthorizationCode)}
	var rec grantRecord
	if subject, err := c.subject(user); err == nil {
		e, err := m.load(ctx, c, subject)
		if err != nil {
			return Details{}, err
		}
		rec = e.rec
		d.fromGrant(rec)
	}
	d.Client, err = m.clientDetails(ctx, c, rec, d.Server.Issuer)
	return d, err
}

// fromGrant fills in what the grant says.
func (d *Details) fromGrant(rec grantRecord) {
	d.Connection, d.Account = rec.Connection, rec.Account
	d.Scopes, d.RequestedScopes = rec.Scopes, rec.Requested
	d.Created, d.Updated, d.Expires = rec.Created, rec.Updated, rec.Expiry
	d.RefreshToken = rec.RefreshToken != ""
	if rec.AccessToken != "" {
		d.TokenType = cmp.Or(rec.TokenType, "Bearer")
	}
	if rec.Issuer != "" {
		d.Recorded = &RecordedServer{Issuer: rec.Issuer, TokenEndpoint: rec.TokenEndpoint,
			RevocationEndpoint: rec.RevocationEndpoint, Resource: rec.Resource, Audience: rec.Audience}
	}
}

// serverDetails resolves the server as resolve does, from the cached
// discovery result only: the configured endpoints win, and a discovered
// server whose issuer is not the configured one contributes nothing.
func (c *connector) serverDetails() ServerDetails {
	var d ServerDetails
	if got := c.discovered.Load(); got != nil && (c.cfg.Issuer == "" || c.cfg.Issuer == got.result.Server.Issuer) {
		s := got.result.Server
		d.Endpoints = Endpoints{Issuer: s.Issuer, AuthorizationEndpoint: s.AuthorizationEndpoint, TokenEndpoint: s.TokenEndpoint,
			RegistrationEndpoint: s.RegistrationEndpoint, RevocationEndpoint: s.RevocationEndpoint}
		d.Source, d.DiscoveredAt = SourceDiscovered, got.at
	}
	configured := false
	for _, e := range []struct {
		field *string
		value string
	}{
		{&d.Issuer, c.cfg.Issuer}, {&d.AuthorizationEndpoint, c.cfg.AuthorizationEndpoint}, {&d.TokenEndpoint, c.cfg.TokenEndpoint},
		{&d.RegistrationEndpoint, c.cfg.RegistrationEndpoint}, {&d.RevocationEndpoint, c.cfg.RevocationEndpoint},
	} {
		override(e.field, e.value)
		configured = configured || e.value != ""
	}
	switch {
	case d.Source != "":
	case configured:
		d.Source = SourceConfigured
	default:
		d.Source = SourceNotDiscovered
	}
	return d
}

// clientDetails describes the client that rec's tokens were issued to,
// or with no grant, the client known to be ready at issuer.
func (m *Manager) clientDetails(ctx context.Context, c *connector, rec grantRecord, issuer string) (ClientDetails, error) {
	d := ClientDetails{Registration: c.cfg.Registration}
	kind, id := rec.ClientKind, rec.ClientID
	if kind == "" && c.cfg.ClientID != "" {
		kind, id = RegistrationStatic, c.cfg.ClientID
	}
	if rec.Issuer != "" {
		issuer = rec.Issuer
	}
	switch {
	case kind == RegistrationStatic:
		d.Kind, d.ID = kind, id
		d.SecretStored = c.cfg.ClientID == id && c.cfg.ClientSecret != ""
		if c.cfg.ClientID == id {
			d.KeyStored, d.AuthMethod = c.cfg.ClientKey != "", c.cfg.TokenAuthMethod
		}
	case kind == RegistrationCIMD:
		d.Kind, d.ID = kind, id
	case issuer != "" && (kind == RegistrationDCR || kind == ""):
		// The registration is in the store, not at the server.
		reg, version, err := m.readClient(ctx, clientKey(c.id, issuer))
		if err != nil {
			return d, err
		}
		if version != 0 && (id == "" || reg.ClientID == id) {
			d.Kind, d.ID, d.SecretStored, d.SecretExpires = RegistrationDCR, reg.ClientID, reg.ClientSecret != "", reg.SecretExpires
		}
	}
	return d, nil
}

// Granted is what a user is shown of their own connection: whose account
// the provider says it is, and the scopes granted.
type Granted struct {
	// Account is whose account the provider says the connection is;
	// nil when its token response named none.
	Account *Account `json:"account,omitempty"`
	// Scopes are the scopes the provider granted, as its last token
	// response named them (RFC 6749 §5.1).
	Scopes []string `json:"scopes,omitempty"`
}

// Granted returns the account and scopes of user's connection to
// connector (the shared one under shared consent), as the last token
// response named them: zero when it never connected or was disconnected,
// or for an unknown connector or user. It is cheap: the grant in memory
// that calls use, else one store read; never the authorization server.
func (m *Manager) Granted(ctx context.Context, connector, user string) Granted {
	c := m.conns[connector]
	if c == nil {
		return Granted{}
	}
	subject, err := c.subject(user)
	if err != nil {
		return Granted{}
	}
	e, err := m.load(ctx, c, subject)
	if err != nil {
		return Granted{}
	}
	switch e.rec.Connection.State {
	case connectors.StateNone, connectors.StateDisconnected:
		return Granted{}
	}
	return Granted{Account: e.rec.Account, Scopes: e.rec.Scopes}
}
