package mcpmux

import (
	"context"
	"net/http"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Credential is what mcpgate presents to one upstream on behalf of a caller.
type Credential struct {
	// Key tells credentials apart without revealing them: upstream sessions
	// and list caches are kept per connector and key. It must never be the
	// secret itself, and never empty: callers with the same key share an
	// upstream session and its cached lists, so two users' credentials
	// must have two keys. A refreshed token of one grant may keep its key.
	Key string
	// Header carries the secret to the upstream. The Mux only reads it,
	// and hides its values wherever an upstream's answer repeats them.
	Header http.Header
	// RoundTrip, if set, sends each request that carries Header, through
	// rt, in place of rt.RoundTrip: a token bound to a key must prove
	// each request it goes with (DPoP, RFC 9449). Credentials with one
	// Key must all have it or all not, as they share an upstream
	// connection. nil: requests go as they are.
	RoundTrip func(rt http.RoundTripper, req *http.Request) (*http.Response, error)
}

// CredentialRequest asks for the credential of one caller at one connector.
type CredentialRequest struct {
	// Caller is who the request is for.
	Caller grants.Caller
	// Connector is where it goes.
	Connector *connectors.Connector
	// Refused is the credential the upstream refused with 401 (or 403
	// insufficient_scope), or nil, so that a source that can refresh it
	// does so, unless it has already replaced it.
	Refused *Credential
	// Challenge is the upstream's WWW-Authenticate header with the refusal.
	Challenge string
}

// Credentials returns the credential for a request. mcpmux never learns
// where credentials come from: static config, OAuth tokens or anything else.
// It returns *ConsentRequired when someone must consent first, which the
// Mux turns into the agent's connect prompt; any other error makes the
// connector unavailable, and its message reaches the agent, so it must
// hold no secret. It is called concurrently, on the request path.
type Credentials func(ctx context.Context, req CredentialRequest) (Credential, error)

// StaticCredentials hands out each connector's configured credential, the
// same for every caller.
func StaticCredentials(_ context.Context, req CredentialRequest) (Credential, error) {
	return Credential{Key: "static", Header: req.Connector.Header()}, nil
}

// Static is StaticCredentials for conns, with each connector's headers
// built once, since they never change: the hot path reuses them.
func Static(conns []*connectors.Connector) Credentials {
	creds := make(map[string]Credential, len(conns))
	for _, c := range conns {
		creds[c.ID] = Credential{Key: "static", Header: c.Header()}
	}
	// The map is never written after this, so concurrent reads are safe.
	return func(_ context.Context, req CredentialRequest) (Credential, error) {
		return creds[req.Connector.ID], nil
	}
}

// Credential returns the credential of req.Caller at req.Connector from
// the Mux's own source, for a caller that reaches the connector another
// way than MCP, such as its HTTP API: both ways get the same credential,
// and a consent that is missing answers with the same ConsentRequired.
func (m *Mux) Credential(ctx context.Context, req CredentialRequest) (Credential, error) {
	cred, err := m.credential(ctx, req)
	// A refused credential's retry is the same request, used once.
	if err == nil && m.used != nil && req.Refused == nil {
		m.used(req.Connector.ID, req.Caller.ID)
	}
	return cred, err
}
