// Package oauthflow is mcpgate's OAuth 2.1 client toward remote MCP
// servers: it discovers each connector's authorization server, registers a
// client (static, client ID metadata document, or RFC 7591), runs the
// consent flow with PKCE and a signed single-use state, keeps the tokens
// sealed in a store, refreshes them one refresh at a time per credential
// (across every instance sharing the store), and revokes them on
// disconnect. Callers get an Authorization header, never the token record.
package oauthflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// Paths under Options.PublicURL that the site serves for this package.
const (
	CallbackPath       = "/connect/callback"
	ClientMetadataPath = "/connect/client-metadata.json"
)

// Options configure a Manager. Store, PublicURL and StateKey are required.
type Options struct {
	// Store keeps every record: clients, pending flows and grants. It
	// should seal them. Required. When several instances share it, it
	// must have the capabilities of a store.Shared (every backend does):
	// a grant then changes under a lease in the store and only if no
	// other instance wrote it since it was read, a client registers
	// create-only, and each grant change is announced to the other
	// instances, which drop their copy in memory at once.
	Store store.Store
	// PublicURL is the site's origin, such as https://mcp.example.com: the
	// redirect URI is PublicURL+CallbackPath, and under cimd the client_id
	// is PublicURL+ClientMetadataPath. It must be https, or http on a
	// loopback host. Required.
	PublicURL string
	// AllowedRedirects are origins (scheme://host[:port]) that a
	// redirect_url may point to, besides PublicURL's own.
	AllowedRedirects []string
	// StateKey is the 32-byte HMAC key of state handles. Required.
	StateKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs; nil discards them.
	Logger *zap.Logger
	// ClientName is the client_name of the client ID metadata document,
	// and the start of the one each connector registers with under RFC
	// 7591 ("<ClientName> <connector>") unless its config names one.
	// Default "mcpgate".
	ClientName string
	// Locks serializes changes to grants, and carries each change to the
	// tokens that the other Managers sharing it keep in memory, so that a
	// disconnect through one stops them all at once. Managers on one store
	// in one process should share it (see Locks); nil gives this Manager
	// its own.
	Locks *Locks
	// OnEvent, when set, is told of consents, refreshes, disconnects and
	// revocations, for audit logs and metrics. It runs on the request
	// path (a refresh's, a callback's), so it must be quick.
	OnEvent func(Event)
}

// Timings.
const (
	// flowTTL is how long a consent may take (DESIGN: 10 minutes).
	flowTTL = 10 * time.Minute
	// clockSkew is how far in the future a flow's creation may lie.
	clockSkew = time.Minute
	// expirySkew refreshes a token this long before it expires, as
	// x/oauth2 does.
	expirySkew = 10 * time.Second
	// discoveryTTL is how long a discovery result is reused.
	discoveryTTL = 5 * time.Minute
	// recheck is how long a grant that is not active is served from
	// memory before the store is read again, to see a consent that another
	// instance completed.
	recheck = 5 * time.Second
	// maxCacheAge is how long an active grant is served from memory
	// before the store is read again: the bound on how late another
	// instance's change (a disconnect) takes effect here when its notice
	// is lost.
	maxCacheAge = 60 * time.Second
	// callTimeout bounds each call to an authorization server.
	callTimeout = 30 * time.Second
)

// Manager runs the OAuth flows of a set of connectors. It is safe for
// concurrent use.
type Manager struct {
	store     store.Store
	stateKey  []byte
	now       func() time.Time
	log       *zap.Logger
	name      string
	callback  string   // the redirect URI
	cimdID    string   // the client ID metadata document's URL, "" if PublicURL is not https
	origins   []origin // where redirect_url may point
	metadata  []byte   // the client ID metadata document
	conns     map[string]*connector
	locks     *Locks // one writer per grant key
	onEvent   func(Event)
	refreshes singleflight.Group // one refresh in flight per grant key
	registers singleflight.Group // one registration in flight per client key
	maxFlows  int                // the bound on pending consents in the store
	leaseWait time.Duration      // the bound on a wait for a grant's lease: leaseWait
	unfollow  func()             // ends the subscription to grant notices; nil if none
}

// connector is one OAuth connector at run time.
type connector struct {
	id   string
	cfg  Config
	http *http.Client

	mu     sync.RWMutex
	grants map[string]*entry // decoded grants by subject; guarded by mu

	discovered atomic.Pointer[discovered]          // the cached discovery result
	challenge  atomic.Pointer[discovery.Challenge] // the last refusal's challenge
	discovery  singleflight.Group
	failures   sync.Map // subject → the last failure of a refresh that may pass
	dpopNonces sync.Map // origin → the DPoP-Nonce it sent last (RFC 9449 §8, §9)
}

// discovered is a discovery result and when it was fetched.
type discovered struct {
	result *discovery.Result
	at     time.Time
}

// New returns a Manager for configs, which are validated. When the store
// carries notices, the Manager listens for other instances' grant
// changes until Close.
func New(opts Options, configs []Config) (*Manager, error) {
	m, err := newManager(opts)
	if err != nil {
		return nil, err
	}
	for _, cfg := range configs {
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("oauth connector %s: %w", cfg.Connector, err)
		}
		if m.conns[cfg.Connector] != nil {
			return nil, fmt.Errorf("oauth connector %s is configured twice", cfg.Connector)
		}
		m.conns[cfg.Connector] = newConnector(cfg.withDefaults())
	}
	m.follow()
	return m, nil
}

// newManager checks opts and builds a Manager without connectors.
func newManager(opts Options) (*Manager, error) {
	if opts.Store == nil {
		return nil, errors.New("oauthflow: a store is required")
	}
	if len(opts.StateKey) != 32 {
		return nil, errors.New("oauthflow: the state key must be 32 bytes")
	}
	public, err := parseAbsolute(opts.PublicURL)
	if err != nil || (public.Path != "" && public.Path != "/") || public.RawQuery != "" || public.Fragment != "" ||
		(public.Scheme == "http" && !egress.IsLoopbackHost(public.Hostname())) {
		return nil, fmt.Errorf("oauthflow: public URL %q must be an https origin (or http on loopback)", opts.PublicURL)
	}
	base := strings.TrimSuffix(opts.PublicURL, "/")
	m := &Manager{
		store:    opts.Store,
		stateKey: append([]byte(nil), opts.StateKey...),
		now:      opts.Now,
		log:      opts.Logger,
		name:     opts.ClientName,
		callback: base + CallbackPath,
		origins:  []origin{originOf(public)},
		conns:    make(map[string]*connector),
		locks:    opts.Locks,
		onEvent:  opts.OnEvent,
		maxFlows: defaultMaxFlows,
		// A field, so that a test need not wait for a whole lease.
		leaseWait: leaseWait,
	}
	for _, raw := range opts.AllowedRedirects {
		o, err := parseOrigin(raw)
		if err != nil {
			return nil, fmt.Errorf("oauthflow: allowed redirect: %v", err)
		}
		m.origins = append(m.origins, o)
	}
	if m.locks == nil {
		m.locks = new(Locks)
	}
	m.setDefaults()
	// Client ID metadata documents must be served over https (A1).
	if public.Scheme == "https" {
		m.cimdID = base + ClientMetadataPath
	}
	m.metadata, _ = json.Marshal(m.clientMetadata(m.cimdID, AuthMethodNone))
	return m, nil
}

func (m *Manager) setDefaults() {
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.name == "" {
		m.name = "mcpgate"
	}
}

// newConnector builds the run-time connector of cfg, with an HTTP client
// that never follows redirects: a token or registration request must not
// be replayed to wherever a 307 points (RFC 9700 §4.12).
func newConnector(cfg Config) *connector {
	hc := http.Client{Timeout: callTimeout}
	if cfg.HTTP != nil {
		hc = *cfg.HTTP
	}
	if hc.Timeout == 0 {
		hc.Timeout = callTimeout
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &connector{id: cfg.Connector, cfg: cfg, http: &hc, grants: make(map[string]*entry)}
}

// lookup returns the connector with id.
func (m *Manager) lookup(id string) (*connector, error) {
	c := m.conns[id]
	if c == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownConnector, id)
	}
	return c, nil
}

// subject is whose grant a user's call uses: "" under shared consent.
func (c *connector) subject(user string) (string, error) {
	if c.cfg.Consent == Shared {
		return "", nil
	}
	if user == "" {
		return "", ErrNoIdentity
	}
	return user, nil
}

// Consent returns a connector's consent mode, and whether it is an OAuth
// connector of this Manager.
func (m *Manager) Consent(connector string) (Consent, bool) {
	c := m.conns[connector]
	if c == nil {
		return "", false
	}
	return c.cfg.Consent, true
}

// ClientMetadata returns the client ID metadata document that the site
// serves at ClientMetadataPath. It holds no secret.
func (m *Manager) ClientMetadata() []byte { return m.metadata }

// clientMetadata is the client's metadata, as registered with RFC 7591 or
// published as a client ID metadata document (with clientID set).
func (m *Manager) clientMetadata(clientID, authMethod string) map[string]any {
	md := map[string]any{
		"client_name":                m.name,
		"redirect_uris":              []string{m.callback},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": authMethod,
		"application_type":           "web",
	}
	if clientID != "" {
		md["client_id"] = clientID
	}
	return md
}

// Connection returns the state of a connector's connection for user
// (ignored under shared consent). An unknown connector or user has the
// zero Connection: needs_auth.
func (m *Manager) Connection(ctx context.Context, connector, user string) connectors.Connection {
	c := m.conns[connector]
	if c == nil {
		return connectors.Connection{}
	}
	subject, err := c.subject(user)
	if err != nil {
		return connectors.Connection{}
	}
	e, err := m.load(ctx, c, subject)
	if err != nil {
		return connectors.Connection{State: connectors.StateError, Reason: "the stored credential cannot be read"}
	}
	if c.clientCredentials() {
		return clientConnection(e.rec.Connection)
	}
	return c.connection(&e.rec)
}
