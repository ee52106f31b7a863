package oauthflow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// The records this package keeps in the Store, one JSON document each. The
// Store seals them; in memory, each field tagged secret prints and
// marshals as REDACTED (redact.go). The stored form is written through a
// method-free twin type (clientWire, flowWire, grantWire, revocationWire),
// which the tag means nothing to: the only path by which the secrets
// reach bytes.

// clientRecord is a client registered with one authorization server by
// RFC 7591, under clientKey(connector, issuer).
type clientRecord struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty" secret:"true"`
	// AuthMethod is the token_endpoint_auth_method the server returned.
	AuthMethod string `json:"token_endpoint_auth_method"`
	// RedirectURI is the callback registered; a changed public URL means
	// registering again.
	RedirectURI string `json:"redirect_uri"`
	// SecretExpires is client_secret_expires_at; zero: never.
	SecretExpires time.Time `json:"client_secret_expires_at,omitzero"`
	Created       time.Time `json:"created"`
}

type clientWire clientRecord

func (r clientRecord) Format(f fmt.State, verb rune) { formatRedacted(f, verb, clientWire(r)) }
func (r clientRecord) MarshalJSON() ([]byte, error)  { return marshalRedacted(clientWire(r)) }

// staticBinding remembers which authorization server a static client was
// first used with, when config does not say, so that its secret never
// goes to another issuer.
type staticBinding struct {
	ClientID string `json:"client_id"`
	Issuer   string `json:"issuer"`
}

// flowRecord is one pending consent, under flowKey(id) for flowTTL. It
// holds everything the callback must check against or reuse, so that the
// callback depends on nothing that changed since the start (RFC 9700
// §4.4.2).
type flowRecord struct {
	Connector string `json:"connector"`
	// Subject is whose grant it makes: "" for shared consent.
	Subject string `json:"subject,omitempty"`
	// Initiator is who started it; the callback must come from them.
	Initiator string `json:"initiator,omitempty"`
	Issuer    string `json:"issuer"`
	// IssRequired: the server advertised
	// authorization_response_iss_parameter_supported (RFC 9207).
	IssRequired        bool      `json:"iss_required,omitempty"`
	TokenEndpoint      string    `json:"token_endpoint"`
	RevocationEndpoint string    `json:"revocation_endpoint,omitempty"`
	ClientKind         string    `json:"client_kind"`
	ClientID           string    `json:"client_id"`
	Verifier           string    `json:"verifier" secret:"true"`
	RedirectURI        string    `json:"redirect_uri"`
	RedirectURL        string    `json:"redirect_url,omitempty"`
	Resource           string    `json:"resource"`
	Audience           string    `json:"audience,omitempty"`
	Scopes             []string  `json:"scopes,omitempty"`
	Binding            string    `json:"binding,omitempty"` // Config.Binding at the start
	Created            time.Time `json:"created"`

	// DPoP: the tokens are to be bound to a new DPoP key (dpopUse at the
	// start).
	DPoP bool `json:"dpop,omitempty"`
}

type flowWire flowRecord

func (r flowRecord) Format(f fmt.State, verb rune) { formatRedacted(f, verb, flowWire(r)) }
func (r flowRecord) MarshalJSON() ([]byte, error)  { return marshalRedacted(flowWire(r)) }

// grantRecord is the credential and connection state of one connector and
// subject, under grantKey. It outlives a disconnect, without tokens, so
// that the state and its reason remain.
type grantRecord struct {
	Connection connectors.Connection `json:"connection"`
	// Where the tokens came from, recorded at the callback; refresh and
	// revocation go to these endpoints only.
	Issuer             string `json:"issuer,omitempty"`
	ClientKind         string `json:"client_kind,omitempty"`
	ClientID           string `json:"client_id,omitempty"`
	TokenEndpoint      string `json:"token_endpoint,omitempty"`
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	Resource           string `json:"resource,omitempty"`
	Audience           string `json:"audience,omitempty"`
	// Binding is what the tokens are bound to (Config.Binding), as the
	// consent that obtained them recorded it; empty in a grant stored
	// before grants recorded it.
	Binding string `json:"binding,omitempty"`

	AccessToken  string    `json:"access_token,omitempty" secret:"true"`
	RefreshToken string    `json:"refresh_token,omitempty" secret:"true"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// TokenType is the token_type of the last token response: "DPoP" for
	// tokens bound to DPoPKey (RFC 9449 §5), else empty (Bearer).
	TokenType string `json:"token_type,omitempty"`
	// DPoPKey is the private key the tokens are bound to (dpopKey.encode),
	// sealed with them: a stolen token is useless without it. Empty when
	// the connection does not use DPoP.
	DPoPKey string `json:"dpop_key,omitempty" secret:"true"`
	// Obtained is when AccessToken was issued.
	Obtained time.Time `json:"obtained,omitzero"`
	// Scopes were granted; Requested were asked for.
	Scopes    []string `json:"scopes,omitempty"`
	Requested []string `json:"requested,omitempty"`
	// StepUp is what the next consent must ask for, after an
	// insufficient_scope refusal.
	StepUp []string `json:"step_up,omitempty"`
	// StepUpRepeats counts the insufficient_scope refusals in a row that
	// wanted nothing the consent before them had not asked for: each
	// consent again would ask the same (maxStepUpRepeats bounds them).
	StepUpRepeats int `json:"step_up_repeats,omitempty"`
	// Generation counts consents; it changes Token.Key.
	Generation uint64 `json:"generation,omitempty"`
	// Account is whom the provider says the tokens are for, as the last
	// token response named them: for display only.
	Account *Account `json:"account,omitempty"`
	// Created is when the first consent stored tokens; Updated when the
	// latest tokens came, by consent or refresh. Neither is cleared when
	// the tokens are dropped.
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	// Unrefreshable counts the consents in a row whose expiring access
	// token came with no refresh token, and expired (see
	// connectors.StateMisconfigured); a refresh token resets it.
	Unrefreshable int `json:"unrefreshable,omitempty"`
}

type grantWire grantRecord

func (r grantRecord) Format(f fmt.State, verb rune) { formatRedacted(f, verb, grantWire(r)) }
func (r grantRecord) MarshalJSON() ([]byte, error)  { return marshalRedacted(grantWire(r)) }

// revocationRecord is a tombstone: an RFC 7009 revocation still owed to an
// authorization server, under a revocationKey until revocationTTL
// after the disconnect. A disconnect stores it with the grant it empties,
// before the first attempt, and deletes it once that attempt revoked
// every token; one that failed in a way worth retrying stays. It
// holds exactly what a retry needs. The client is named, not copied: the
// retry authenticates as the recorded client as it stands then
// (recordedClient), so no client secret is duplicated here.
type revocationRecord struct {
	Connector string `json:"connector"`
	// Issuer, ClientKind and ClientID name the client the tokens were
	// issued to.
	Issuer     string `json:"issuer"`
	ClientKind string `json:"client_kind"`
	ClientID   string `json:"client_id"`
	// Endpoint is the revocation endpoint the grant recorded.
	Endpoint string `json:"revocation_endpoint"`
	// The tokens still to revoke; each field's name is its
	// token_type_hint. The refresh token goes first (RFC 7009 §2.1).
	RefreshToken string `json:"refresh_token,omitempty" secret:"true"`
	AccessToken  string `json:"access_token,omitempty" secret:"true"`
	// Attempts counts the attempts made, the disconnect's included.
	Attempts int `json:"attempts"`
	// Next is when the next attempt is due.
	Next    time.Time `json:"next_attempt"`
	Created time.Time `json:"created"`
}

type revocationWire revocationRecord

func (r revocationRecord) Format(f fmt.State, verb rune) { formatRedacted(f, verb, revocationWire(r)) }
func (r revocationRecord) MarshalJSON() ([]byte, error)  { return marshalRedacted(revocationWire(r)) }

// apply moves the connection through event e, with reason, and notes when
// the state changed. Every state change goes through here.
func (r *grantRecord) apply(e connectors.Event, reason string, now time.Time) error {
	return r.Connection.Apply(e, reason, now)
}

// dropTokens forgets the tokens, as after a refused refresh or a
// disconnect.
func (r *grantRecord) dropTokens() {
	r.AccessToken, r.RefreshToken = "", ""
	r.Expiry, r.Obtained = time.Time{}, time.Time{}
}

// getJSON reads the record under key into v, a pointer to a wire type.
func getJSON(ctx context.Context, st store.Store, key string, v any) error {
	b, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	return decodeJSON(b, v)
}

// getJSONVersioned reads the record under key into v, a pointer to a wire
// type, and returns its version, or zero from a store without versions.
func getJSONVersioned(ctx context.Context, st store.Store, key string, v any) (uint64, error) {
	vs, ok := st.(store.Versioned)
	if !ok {
		return 0, getJSON(ctx, st, key, v)
	}
	b, version, err := vs.GetVersioned(ctx, key)
	if err != nil {
		return 0, err
	}
	return version, decodeJSON(b, v)
}

// decodeJSON decodes a stored record.
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding the record: %v", err)
	}
	return nil
}

// putJSON stores v, a pointer to a wire type, under key.
func putJSON(ctx context.Context, st store.Store, key string, v any, ttl time.Duration) error {
	w, err := jsonWrite(key, v, ttl)
	if err != nil {
		return err
	}
	return st.Put(ctx, w.Key, w.Value, w.TTL)
}

// jsonWrite is the write that stores v, a pointer to a wire type, under
// key, for writeAll.
func jsonWrite(key string, v any, ttl time.Duration) (store.Write, error) {
	b, err := json.Marshal(v)
	return store.Write{Key: key, Value: b, TTL: ttl}, err
}

// writeAll makes writes in one batch when the store can (a
// store.Batcher), so that a reader, or a crash, sees all of them or none;
// else one at a time, in order.
func writeAll(ctx context.Context, st store.Store, writes []store.Write) error {
	if b, ok := st.(store.Batcher); ok {
		return b.Batch(ctx, writes)
	}
	for _, w := range writes {
		var err error
		if w.Delete {
			err = st.Delete(ctx, w.Key)
		} else {
			err = st.Put(ctx, w.Key, w.Value, w.TTL)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
