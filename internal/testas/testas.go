// Package testas runs a real third-party OAuth authorization server,
// oidc-provider on Node.js, on loopback for end-to-end tests, and puts MCP
// upstreams behind it as OAuth-protected resources.
//
// The server (server.mjs) allows open dynamic client registration
// (RFC 7591), requires PKCE with S256, accepts exactly one resource
// indicator (RFC 8707), issues opaque access tokens whose audience is that
// resource, issues a refresh token with every authorization code and rotates
// it on every use, and serves revocation (RFC 7009) and introspection
// (RFC 7662). No human takes part: its login page logs in the account named
// by the login_hint parameter, or the first of Options.Accounts, and grants
// everything asked, so a plain http.Client with a cookie jar, or a browser,
// that follows redirects from the authorization URL lands on the client's
// redirect_uri with code, state and iss.
//
// The resource URL must be known before the server starts, so start the
// upstream first and guard it afterwards:
//
//	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
//	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: 3 * time.Second})
//	up.SetGuard(as.Protect)
//
// Behaviour of oidc-provider that a client under test meets:
//   - Issuer is http://127.0.0.1:PORT, and both
//     /.well-known/oauth-authorization-server and
//     /.well-known/openid-configuration serve the same metadata.
//   - The resource must be in the authorization request; the token and
//     refresh requests may repeat it or leave it out (the granted one is
//     used), but naming another one fails with invalid_target.
//   - Replaying a rotated-out refresh token fails with invalid_grant and
//     revokes the whole grant; so does revoking any of its refresh tokens.
//   - A refresh request that fails after authenticating, for example with
//     invalid_target, has already consumed its refresh token.
//
// Tests read the server's counters with Stats, ask whether a token is still
// valid with Active, and see whose tokens reached the upstream with Seen.
//
// The Node dependencies are not vendored. Install them once, as CI does,
// with:
//
//	npm ci --prefix internal/testas --no-audit --no-fund
package testas

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configures an authorization server. Resource is required.
type Options struct {
	// Resource is the protected MCP endpoint's URL, the only resource
	// indicator the server accepts and the audience of its access tokens.
	// Required.
	Resource string
	// Scopes are the resource's scopes, granted whenever asked for.
	// Default ["mcp"].
	Scopes []string
	// AccessTokenTTL is the access tokens' lifetime, rounded up to whole
	// seconds. Default one hour.
	AccessTokenTTL time.Duration
	// Accounts are the accounts that may log in. An authorization request
	// logs in the one its login_hint names, even over a browser session of
	// another account; without a login_hint the browser's session stands,
	// or else the first account logs in. A login_hint naming no account
	// ends in error=access_denied. Default ["alice"].
	Accounts []string
	// Issuer, when set, is the issuer identifier the server names itself
	// with, and so the base of every URL in its metadata, instead of its
	// own http://127.0.0.1:PORT: for a test that serves it through a proxy
	// at that URL, as an MCP server of the 2025-03-26 era serves its
	// authorization server at its own origin. The proxy forwards to URL.
	Issuer string
	// KeyClients are static clients that authenticate with
	// private_key_jwt (RFC 7523), known by their public keys.
	KeyClients []KeyClient
	// ServiceClients maps the client_id of each client that may use the
	// client credentials grant (RFC 6749 §4.4), and only that grant, to its
	// client_secret; it authenticates with client_secret_basic or
	// client_secret_post and gets the resource's scopes. The grant is
	// enabled only when there are some.
	ServiceClients map[string]string
	// DPoP turns DPoP (RFC 9449) on, advertised in the server's metadata
	// (dpop_signing_alg_values_supported): a token request with a proof
	// gets a token bound to its key, which Protect accepts only with a
	// proof of that key. Default off.
	DPoP bool
	// DPoPNonce turns DPoP on, and makes the token endpoint and Protect
	// require a nonce of their own in every proof (RFC 9449 §8, §9): a
	// proof without the current one is refused with use_dpop_nonce.
	DPoPNonce bool
}

// withDefaults fills in the defaults the Options fields document.
func (o Options) withDefaults() Options {
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"mcp"}
	}
	if o.AccessTokenTTL <= 0 {
		o.AccessTokenTTL = time.Hour
	}
	if len(o.Accounts) == 0 {
		o.Accounts = []string{"alice"}
	}
	return o
}

// AS is a running authorization server. Its methods are safe for concurrent
// use.
type AS struct {
	// Issuer is the server's issuer identifier, http://127.0.0.1:PORT with
	// no trailing slash. Its metadata is served both at
	// /.well-known/oauth-authorization-server and at
	// /.well-known/openid-configuration. It is Options.Issuer when set.
	Issuer string
	// URL is where the server listens, http://127.0.0.1:PORT: Issuer
	// unless Options.Issuer is set.
	URL string

	opts     Options
	rsSecret string       // client_secret of the introspecting client "testas-rs"
	client   *http.Client // for introspection and stats, closed with the server
	prm      *url.URL     // where Protect serves the resource's metadata

	rsNonce string // Protect's DPoP nonce, with Options.DPoPNonce

	seenMu   sync.Mutex
	seen     []string
	refusals []string // why Protect refused DPoP uses (DPoPRefusals)
}

// Start starts an authorization server for opts.Resource and stops it when
// the test ends. It fails the test when Node.js or the npm dependencies are
// missing.
func Start(t testing.TB, opts Options) *AS {
	t.Helper()
	if opts.Resource == "" {
		t.Fatal("testas: Options.Resource is required")
	}
	prm, err := metadataURL(opts.Resource)
	if err != nil {
		t.Fatalf("testas: Options.Resource: %v", err)
	}
	a := &AS{
		opts:     opts.withDefaults(),
		rsSecret: rand.Text(),
		rsNonce:  newNonce(),
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 10 * time.Second},
		prm:      prm,
	}
	cfg := a.config()
	if cfg.KeyClients, err = keyClientConfigs(opts.KeyClients); err != nil {
		t.Fatalf("testas: Options.KeyClients: %v", err)
	}
	a.Issuer, a.URL = startNode(t, cfg)
	// Idle keep-alive connections would otherwise outlive the test and
	// trip goleak in packages that use it.
	t.Cleanup(a.client.CloseIdleConnections)
	return a
}

// serverConfig is the TESTAS_CONFIG object that server.mjs reads.
type serverConfig struct {
	Resource       string   `json:"resource"`
	Scopes         []string `json:"scopes"`
	AccessTokenTTL int      `json:"accessTokenTTL"` // seconds
	Accounts       []string `json:"accounts"`
	RSSecret       string   `json:"rsSecret"`
	Issuer         string   `json:"issuer,omitempty"`
	// KeyClients is Options.KeyClients.
	KeyClients []keyClientConfig `json:"keyClients,omitempty"`
	// ServiceClients is Options.ServiceClients.
	ServiceClients map[string]string `json:"serviceClients,omitempty"`
	// DPoP and DPoPNonce are Options'.
	DPoP      bool `json:"dpop,omitempty"`
	DPoPNonce bool `json:"dpopNonce,omitempty"`
}

// config returns the server's configuration.
func (a *AS) config() serverConfig {
	return serverConfig{
		Resource:       a.opts.Resource,
		Scopes:         a.opts.Scopes,
		AccessTokenTTL: int((a.opts.AccessTokenTTL + time.Second - 1) / time.Second),
		Accounts:       a.opts.Accounts,
		RSSecret:       a.rsSecret,
		Issuer:         a.opts.Issuer,
		ServiceClients: a.opts.ServiceClients,
		DPoP:           a.opts.DPoP,
		DPoPNonce:      a.opts.DPoPNonce,
	}
}

// Stats counts what the server has received since it started.
type Stats struct {
	// TokenRequests counts token endpoint requests by grant_type, whatever
	// their outcome.
	TokenRequests map[string]int `json:"token_requests"`
	// TokenErrors counts the token endpoint requests that were refused, by
	// grant_type.
	TokenErrors map[string]int `json:"token_errors"`
	// Authorizations counts authorization requests, not the resumptions
	// after each login and consent.
	Authorizations int `json:"authorizations"`
	// Registrations counts successful dynamic client registrations.
	Registrations int `json:"registrations"`
	// Revocations counts requests to the revocation endpoint.
	Revocations int `json:"revocations"`
	// Introspections counts requests to the introspection endpoint,
	// including those Protect and Active make.
	Introspections int `json:"introspections"`
}

// Stats fetches the server's counters from its test-only /_test/stats
// endpoint.
func (a *AS) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/_test/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("testas: fetching stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("testas: decoding stats: %w", err)
	}
	return st, nil
}

// metadataURL returns where the protected resource metadata of resource is
// served: RFC 9728 section 3.1 inserts the well-known path between the
// host and the resource's path.
func metadataURL(resource string) (*url.URL, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL", resource)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: wellKnownPRM + strings.TrimSuffix(u.Path, "/")}, nil
}
