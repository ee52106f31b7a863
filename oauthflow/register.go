package oauthflow

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// client picks mcpgate's client at as. Under auto: a static client if one
// is configured and belongs to as, else a client ID metadata document if
// as supports them and the public URL is https, else dynamic registration
// (RFC 7591). A client never crosses authorization servers: credentials
// are bound to the issuer that issued them.
func (m *Manager) client(ctx context.Context, c *connector, as *authServer) (client, error) {
	mode := c.cfg.Registration
	if c.cfg.ClientID != "" {
		ok, err := m.staticBelongs(ctx, c, as.Issuer)
		switch {
		case err != nil:
			return client{}, err
		case ok:
			return c.static(), nil
		case mode == RegistrationStatic:
			return client{}, c.misconfigured(fmt.Sprintf("the configured client_id belongs to another authorization server than %q; configure a client for it", as.Issuer))
		}
		m.log.Warn("static client belongs to another authorization server; registering anew",
			zap.String("connector", c.id), zap.String("issuer", as.Issuer))
	}
	if (mode == RegistrationAuto || mode == RegistrationCIMD) && as.CIMD && m.cimdID != "" {
		return client{Kind: RegistrationCIMD, ID: m.cimdID, AuthMethod: AuthMethodNone}, nil
	}
	switch {
	case mode == RegistrationCIMD:
		return client{}, c.misconfigured("client ID metadata documents need an https public_url and an authorization server that supports them")
	case (mode == RegistrationAuto || mode == RegistrationDCR) && as.RegistrationEndpoint != "":
		return m.registered(ctx, c, as)
	case mode == RegistrationDCR:
		return client{}, c.misconfigured("the authorization server offers no registration endpoint")
	}
	return client{}, c.misconfigured("the authorization server offers no registration and no client_id is configured")
}

// static is the configured client.
func (c *connector) static() client {
	return client{Kind: RegistrationStatic, ID: c.cfg.ClientID, Secret: c.cfg.ClientSecret, AuthMethod: c.cfg.TokenAuthMethod,
		Key: c.cfg.ClientKey, KeyID: c.cfg.ClientKeyID}
}

// staticBelongs reports whether the configured client belongs to issuer:
// the configured issuer if there is one, else the first issuer it was used
// with (remembered in the store, and forgotten when client_id changes). So
// a static secret never reaches another server's token endpoint.
func (m *Manager) staticBelongs(ctx context.Context, c *connector, issuer string) (bool, error) {
	if c.cfg.Issuer != "" {
		return c.cfg.Issuer == issuer, nil
	}
	var b staticBinding
	err := getJSON(ctx, m.store, staticBindingKey(c.id), &b)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("reading the static client's binding: %w", err)
	}
	if err == nil && b.ClientID == c.cfg.ClientID {
		return b.Issuer == issuer, nil
	}
	b = staticBinding{ClientID: c.cfg.ClientID, Issuer: issuer}
	if err := putJSON(ctx, m.store, staticBindingKey(c.id), &b, 0); err != nil {
		return false, fmt.Errorf("storing the static client's binding: %w", err)
	}
	m.log.Info("static client bound to its authorization server", zap.String("connector", c.id), zap.String("issuer", issuer))
	return true, nil
}

// registered returns the client registered at as, registering one if
// there is none, or if its secret expired or the callback changed.
func (m *Manager) registered(ctx context.Context, c *connector, as *authServer) (client, error) {
	key := clientKey(c.id, as.Issuer)
	rec, version, err := m.readClient(ctx, key)
	if err != nil {
		return client{}, err
	}
	if version != 0 && m.usableClient(rec, as.Issuer) {
		return rec.client(), nil
	}
	v, err, _ := m.registers.Do(key, func() (any, error) {
		// Shared by every caller waiting, and a registration the server
		// made must not be dropped: not ended by the first caller leaving.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		return m.registerOnce(ctx, c, as, key)
	})
	if err != nil {
		return client{}, err
	}
	return v.(clientRecord).client(), nil
}

// registerOnce registers a client at as unless another instance sharing
// the store does it first: under the client's lease, one instance at a
// time reads the record again and registers only if it still finds none
// usable, so that two first consents at once leave one client at the
// server as well as in the store. Without leases (or past the lease's
// wait) the create-only write in storeClient still keeps one in the store.
func (m *Manager) registerOnce(ctx context.Context, c *connector, as *authServer, key string) (clientRecord, error) {
	l, err := m.acquire(ctx, key)
	if err != nil {
		return clientRecord{}, fmt.Errorf("registering with %s: %w", as.Issuer, err)
	}
	defer m.release(ctx, l, false)
	rec, version, err := m.readClient(ctx, key)
	if err != nil {
		return clientRecord{}, err
	}
	if version != 0 && m.usableClient(rec, as.Issuer) {
		return rec, nil
	}
	return m.register(ctx, c, as, key, version)
}

// readClient reads the client registered under key and its version, which
// is zero if there is none (or on a store without versions, where a
// missing record reads as the zero record too).
func (m *Manager) readClient(ctx context.Context, key string) (clientRecord, uint64, error) {
	var rec clientRecord
	version, err := getJSONVersioned(ctx, m.store, key, (*clientWire)(&rec))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return clientRecord{}, 0, nil
	case err != nil:
		return clientRecord{}, 0, fmt.Errorf("reading the client registration: %w", err)
	case version == 0:
		version = 1 // found, on a store without versions
	}
	return rec, version, nil
}

// usableClient reports whether rec is a client registered at issuer for
// this callback whose secret does not expire within a minute.
func (m *Manager) usableClient(rec clientRecord, issuer string) bool {
	return rec.Issuer == issuer && rec.RedirectURI == m.callback &&
		(rec.SecretExpires.IsZero() || m.now().Add(time.Minute).Before(rec.SecretExpires))
}

// clientName is the client_name connector c registers with: its own, or
// "mcpgate <id>", so that a person consenting to one of several connectors
// at one authorization server sees which one asks.
func (m *Manager) clientName(c *connector) string {
	return cmp.Or(c.cfg.ClientName, m.name+" "+c.id)
}

// client is the record as a client.
func (r clientRecord) client() client {
	return client{Kind: RegistrationDCR, ID: r.ClientID, Secret: r.ClientSecret, AuthMethod: r.AuthMethod}
}

// register registers mcpgate at as (RFC 7591) and stores the client in
// place of the record at version (zero: none).
func (m *Manager) register(ctx context.Context, c *connector, as *authServer, key string, version uint64) (clientRecord, error) {
	method := authMethodFor(as.AuthMethods)
	if method == "" {
		return clientRecord{}, c.misconfigured("the authorization server supports none of client_secret_basic, client_secret_post and none")
	}
	// No resource parameter here: it belongs to authorization and token
	// requests only.
	md := m.clientMetadata("", method)
	md["client_name"] = m.clientName(c)
	body, _ := json.Marshal(md)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return clientRecord{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, _, answer, err := doCapped(c.http, req, maxRegistered)
	if err != nil {
		return clientRecord{}, fmt.Errorf("registering with %s: %w", as.Issuer, err)
	}
	rec, err := m.checkRegistration(status, answer, as.Issuer, method)
	if err != nil {
		return clientRecord{}, fmt.Errorf("registering with %s: %w", as.Issuer, err)
	}
	stored, err := m.storeClient(ctx, c, key, rec, version)
	if err != nil || stored.ClientID != rec.ClientID {
		return stored, err
	}
	m.log.Info("registered client", zap.String("connector", c.id), zap.String("issuer", as.Issuer),
		zap.String("client_id", rec.ClientID), zap.String("token_endpoint_auth_method", rec.AuthMethod))
	return rec, nil
}

// storeClient stores rec under key in place of the record at version,
// and returns the client to use. On a store with versions the write is
// conditional, create-only when version is zero, so that of two
// instances registering at once one client wins: the other's consents
// would fail once its client was overwritten. The loser adopts the
// winner's client and abandons its own registration at the server
// (RFC 7591 offers no way to delete it).
func (m *Manager) storeClient(ctx context.Context, c *connector, key string, rec clientRecord, version uint64) (clientRecord, error) {
	v, ok := m.store.(store.Versioned)
	if !ok {
		if err := putJSON(ctx, m.store, key, (*clientWire)(&rec), 0); err != nil {
			return clientRecord{}, fmt.Errorf("storing the client registration: %w", err)
		}
		return rec, nil
	}
	w, err := jsonWrite(key, (*clientWire)(&rec), 0)
	if err == nil {
		ok, err = v.PutIfVersion(ctx, key, w.Value, 0, version)
	}
	switch {
	case err != nil:
		return clientRecord{}, fmt.Errorf("storing the client registration: %w", err)
	case ok:
		return rec, nil
	}
	winner, _, err := m.readClient(ctx, key)
	if err != nil {
		return clientRecord{}, err
	}
	if !m.usableClient(winner, rec.Issuer) {
		return clientRecord{}, fmt.Errorf("storing the client registration: another instance stored a client at %s meanwhile that cannot be used", rec.Issuer)
	}
	m.log.Debug("another instance registered a client first; abandoning this registration", zap.String("connector", c.id),
		zap.String("issuer", rec.Issuer), zap.String("client_id", winner.ClientID), zap.String("abandoned_client_id", rec.ClientID))
	return winner, nil
}

// authMethodFor picks the token_endpoint_auth_method to register with.
// mcpgate is a confidential client, so it prefers a secret (an intercepted
// code is then useless without it), in the order x/oauth2 tries, falling
// back to a public client. An absent list means client_secret_basic
// (RFC 8414 §2).
func authMethodFor(supported []string) string {
	if len(supported) == 0 {
		return AuthMethodBasic
	}
	for _, m := range []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone} {
		if slices.Contains(supported, m) {
			return m
		}
	}
	return ""
}

// registration is an RFC 7591 §3.2.1 response, reduced to what is checked.
type registration struct {
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret" secret:"true"`
	SecretExpires int64    `json:"client_secret_expires_at"`
	RedirectURIs  []string `json:"redirect_uris"`
	AuthMethod    string   `json:"token_endpoint_auth_method"`
	GrantTypes    []string `json:"grant_types"`
	Error         string   `json:"error"`
	Description   string   `json:"error_description"`
}

type registrationView registration

// Format prints the response with its client secret redacted.
func (r registration) Format(f fmt.State, verb rune) { formatRedacted(f, verb, registrationView(r)) }

// MarshalJSON encodes the response with its client secret redacted; it is
// only ever decoded.
func (r registration) MarshalJSON() ([]byte, error) { return marshalRedacted(registrationView(r)) }

// checkRegistration checks a dynamic registration response (RFC 7591) as
// hostile input and makes the client record of it.
func (m *Manager) checkRegistration(status int, body []byte, issuer, requested string) (clientRecord, error) {
	var r registration
	jsonErr := strictjson.Unmarshal(body, &r, false)
	if status != http.StatusCreated && status != http.StatusOK {
		return clientRecord{}, &endpointError{endpoint: "registration", status: status, code: safeCode(r.Error),
			description: sanitize(r.Description, maxDescription)}
	}
	method := r.AuthMethod
	if method == "" {
		method = requested
	}
	switch {
	case jsonErr != nil:
		return clientRecord{}, errors.New("the registration response is not JSON, or has duplicate or case-variant members")
	case r.ClientID == "" || len(r.ClientID) > 512 || !visible(r.ClientID):
		return clientRecord{}, errors.New("the registration response has no usable client_id")
	case len(r.RedirectURIs) > 0 && !slices.Equal(r.RedirectURIs, []string{m.callback}):
		return clientRecord{}, errors.New("the server registered other redirect_uris than the callback")
	case len(r.GrantTypes) > 0 && !slices.Contains(r.GrantTypes, "authorization_code"):
		return clientRecord{}, errors.New("the server registered no authorization_code grant")
	case method != AuthMethodBasic && method != AuthMethodPost && method != AuthMethodNone:
		return clientRecord{}, fmt.Errorf("the server chose token_endpoint_auth_method %q, which mcpgate does not speak", sanitize(method, maxCode))
	case method != AuthMethodNone && (r.ClientSecret == "" || !httpguts.ValidHeaderFieldValue(r.ClientSecret)):
		return clientRecord{}, errors.New("the server chose a client secret method but sent no usable client_secret")
	}
	rec := clientRecord{Issuer: issuer, ClientID: r.ClientID, AuthMethod: method, RedirectURI: m.callback, Created: m.now()}
	if method != AuthMethodNone {
		rec.ClientSecret = r.ClientSecret
	}
	if r.SecretExpires > 0 {
		rec.SecretExpires = time.Unix(r.SecretExpires, 0)
		if !rec.SecretExpires.After(m.now()) {
			return clientRecord{}, errors.New("the registered client secret has already expired")
		}
	}
	return rec, nil
}

// errClientGone means the client that a flow, grant or tombstone recorded
// is gone or changed, so nothing can authenticate as it any more.
var errClientGone = errors.New("the OAuth client that started this consent no longer exists")

// recordedClient returns the client that a flow or grant recorded, as it
// stands now; it fails with errClientGone if that client is gone or
// changed.
func (m *Manager) recordedClient(ctx context.Context, c *connector, issuer, kind, id string) (client, error) {
	switch kind {
	case RegistrationStatic:
		if c.cfg.ClientID == id {
			return c.static(), nil
		}
	case RegistrationCIMD:
		if m.cimdID != "" && m.cimdID == id {
			return client{Kind: RegistrationCIMD, ID: id, AuthMethod: AuthMethodNone}, nil
		}
	case RegistrationDCR:
		var rec clientRecord
		err := getJSON(ctx, m.store, clientKey(c.id, issuer), (*clientWire)(&rec))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return client{}, fmt.Errorf("reading the client registration: %w", err)
		}
		if err == nil && rec.ClientID == id && rec.Issuer == issuer {
			return rec.client(), nil
		}
	}
	return client{}, errClientGone
}
