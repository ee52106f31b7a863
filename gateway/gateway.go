// Package gateway builds one generation of the running gateway from a
// snapshot of the connector registry: the connectors, their OAuth clients
// and manager, the MCP mux and the user's site. Live holds the generation
// serving now, replaces it atomically when the registry changes, and
// closes a replaced one when its last request ends. It knows nothing of
// Caddy; the root package wires it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// Options are what every generation shares. The Mux and OAuth templates
// carry the settings of the parts; Build fills in what each generation
// has of its own (connectors, credentials, OAuth clients).
type Options struct {
	// Mux is the template of every generation's mux.
	Mux mcpmux.Options
	// OAuth is the template of every generation's OAuth manager. Its
	// Store is nil until the store opens, and so is the manager.
	OAuth oauthflow.Options
	// ConnectKey keys the tag that binds a connect link to its user; nil
	// until the store opens, when the seal key ring it derives from is
	// read.
	ConnectKey []byte
	// CSRF refuses cross-site connects and disconnects.
	CSRF *http.CrossOriginProtection
	// Presets are shown at GET /connectors/presets, without secrets.
	Presets []connectors.PresetView
	// Approvals serves the approval pages of every generation's site.
	Approvals web.Approvals
	// Usage is when each connector was last used, by whom, for LastUsed;
	// the host flushes it to the store. nil: not recorded.
	Usage *connectors.Usage
	// Latest returns the registry now, for what changes in it without
	// a new generation: a drift recorded. nil: the generation's own.
	Latest func() *connectors.Snapshot
	// Logger receives the logs.
	Logger *zap.Logger
}

// Gateway is one generation: what serves agents and people until the
// registry changes. It never changes; a change builds a new one, so a
// request sees one consistent set of connectors and OAuth clients from
// start to end, and readers need no lock.
type Gateway struct {
	o       Options // a copy: the host changes its own when the store opens, while this generation may be serving
	snap    *connectors.Snapshot
	policy  *grants.Policy     // the snapshot's grants, compiled (policy.go)
	grants  []connectors.Grant // the grants of policy's rules, in its order
	conns   []*connectors.Connector
	oauth   []oauthflow.Config
	manager *oauthflow.Manager // nil without OAuth connectors, or before the store opens
	mux     *mcpmux.Mux
	site    *web.Handler

	// uses counts the requests served on it, with retiredBit set once it
	// is replaced; its mux closes when the count of a retired one reaches
	// zero. One word for both, so that a request leaving and another
	// arriving can never both miss the retirement in between (with two,
	// the last request out could read "retired" after a newcomer had
	// counted itself in, and close the gateway under it).
	uses    atomic.Int64
	closing sync.Once
	closed  atomic.Bool
}

// retiredBit marks a replaced gateway in Gateway.uses.
const retiredBit = 1 << 62

// Build builds the generation serving snap. A runtime connector that no
// longer builds is skipped and logged, so that one bad record cannot take
// the gateway down with it; a config connector that fails is an error.
func Build(o *Options, snap *connectors.Snapshot) (*Gateway, error) {
	g := &Gateway{o: *o, snap: snap}
	var err error
	if g.policy, g.grants, err = o.compilePolicy(snap); err != nil {
		return nil, err
	}
	for _, e := range snap.Entries {
		c, cfg, err := o.build(snap, e)
		if err != nil && e.Runtime {
			o.Logger.Error("skipping a runtime connector", zap.String("connector", e.Config.ID), zap.Error(err))
			continue
		}
		if err != nil {
			return nil, err
		}
		g.conns = append(g.conns, c)
		if cfg != nil {
			g.oauth = append(g.oauth, *cfg)
		}
	}
	// Without the store there is no manager: a generation built while
	// provisioning checks the config and serves what needs no OAuth.
	if o.OAuth.Store != nil && len(g.oauth) > 0 {
		m, err := oauthflow.New(o.OAuth, g.oauth)
		if err != nil {
			return nil, err
		}
		g.manager = m
	}
	mo := o.Mux
	mo.Connectors, mo.Policy = g.conns, g.policy
	if len(g.oauth) > 0 {
		mo.Credentials = g.credentials()
	}
	mux, err := mcpmux.New(mo)
	if err != nil {
		g.closeManager()
		return nil, err
	}
	g.mux = mux
	g.site = web.New(web.Options{
		Mux: mux, Policy: g.policy, OAuth: g.OAuthFor, Manager: g.manager,
		PublicURL: o.OAuth.PublicURL, ConnectTag: g.ConnectTag, Presets: o.Presets,
		CSRF: o.CSRF, Approvals: o.Approvals, Drift: g.Drift, Logger: o.Logger,
	})
	o.retainUsage(snap)
	return g, nil
}

// build builds entry e of snap: its connector and, if it uses OAuth, its
// OAuth client.
func (o *Options) build(snap *connectors.Snapshot, e connectors.Entry) (*connectors.Connector, *oauthflow.Config, error) {
	c, err := snap.Connector(e)
	if err != nil {
		return nil, nil, err
	}
	oc := e.Config.OAuth()
	if oc == nil {
		return c, nil, nil
	}
	cfg, err := o.OAuthClient(c, *oc)
	return c, &cfg, err
}

// OAuthClient builds connector c's OAuth client from its settings oc,
// whose placeholders are resolved. It needs the public URL, the base of
// the callback: the redirect URI must be absolute and registered with the
// authorization server (RFC 6749 §3.1.2), and a request's Host, which an
// attacker may choose, cannot stand in for it.
func (o *Options) OAuthClient(c *connectors.Connector, oc connectors.OAuthConfig) (oauthflow.Config, error) {
	if o.OAuth.PublicURL == "" {
		return oauthflow.Config{}, fmt.Errorf("connector %s: auth oauth needs public_url, the base of the OAuth callback", c.ID)
	}
	return oauthflow.NewConfig(c, oc)
}

// Check makes the checks of a connector that the registry leaves to the
// gateway, those of its OAuth client: the registry's Check. A runtime
// connector from the admin API is thus refused with the errors a config
// connector gets, before it is stored.
func (o *Options) Check(cfg connectors.Config, c *connectors.Connector) error {
	if oc := cfg.OAuth(); oc != nil {
		_, err := o.OAuthClient(c, *oc)
		return err
	}
	return nil
}

// Snapshot returns the registry snapshot g serves.
func (g *Gateway) Snapshot() *connectors.Snapshot { return g.snap }

// Connectors returns g's connectors, the config's first.
func (g *Gateway) Connectors() []*connectors.Connector { return g.conns }

// Mux returns g's MCP mux.
func (g *Gateway) Mux() *mcpmux.Mux { return g.mux }

// Site returns g's user-facing HTTP surface.
func (g *Gateway) Site() *web.Handler { return g.site }

// Manager returns g's OAuth manager, or nil when no connector uses OAuth
// or the store is not open yet.
func (g *Gateway) Manager() *oauthflow.Manager { return g.manager }

// Connector returns connector id.
func (g *Gateway) Connector(id string) (*connectors.Connector, bool) {
	for _, c := range g.conns {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// OAuthClient returns connector id's OAuth client, if it uses OAuth.
func (g *Gateway) OAuthClient(id string) (oauthflow.Config, bool) {
	for _, cfg := range g.oauth {
		if cfg.Connector == id {
			return cfg, true
		}
	}
	return oauthflow.Config{}, false
}

// OAuthFor returns the OAuth manager and consent of connector id, if it
// uses OAuth and the store is open.
func (g *Gateway) OAuthFor(id string) (*oauthflow.Manager, oauthflow.Consent, bool) {
	cfg, ok := g.OAuthClient(id)
	if !ok || g.manager == nil {
		return nil, "", false
	}
	return g.manager, cfg.Consent, true
}

// credentials hands each connector its credential: the static one from
// the config, or the caller's (or the shared) OAuth token.
func (g *Gateway) credentials() mcpmux.Credentials {
	static := mcpmux.Static(g.conns)
	return func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
		if req.Connector.Auth.Type != connectors.AuthOAuth {
			return static(ctx, req)
		}
		if g.manager == nil {
			return mcpmux.Credential{}, errors.New("the store is not open yet")
		}
		tr := oauthflow.TokenRequest{Connector: req.Connector.ID, User: req.Caller.ID, Challenge: req.Challenge}
		// The refused token, not a flag: when several requests see one
		// token refused, the manager refreshes once and the others get the
		// token that replaced it.
		if req.Refused != nil {
			tr.Refused = req.Refused.Header.Get("Authorization")
		}
		tok, err := g.manager.Token(ctx, tr)
		if ce, ok := errors.AsType[*oauthflow.ConsentError](err); ok {
			return mcpmux.Credential{}, g.consentRequired(req.Connector.ID, req.Caller.ID, ce)
		}
		if err != nil {
			return mcpmux.Credential{}, err
		}
		cred := mcpmux.Credential{Key: tok.Key, Header: http.Header{"Authorization": {tok.Header}}}
		if tok.Bound() {
			cred.RoundTrip = tok.RoundTrip // a DPoP proof for each request
		}
		return cred, nil
	}
}

// consentRequired tells the mux, and through it the agent, where to
// consent: the Connectors page, where the user starts the flow. The link
// is to the page, not to the authorization server: the flow must start
// in the user's browser, bound to their session, not in the agent. A
// misconfigured connector gets no link, since no consent fixes it. The
// message gives the connection's reason, so that the user learns why it
// stopped (a refresh token the provider refused, a disconnect): the
// reasons are mcpgate's own words, never a provider's text or a secret.
func (g *Gateway) consentRequired(id, user string, ce *oauthflow.ConsentError) *mcpmux.ConsentRequired {
	cr := &mcpmux.ConsentRequired{Connector: id, Status: string(ce.Status), URL: g.ConnectURL(id) + "&for=" + g.ConnectTag(user)}
	consent, _ := g.manager.Consent(id)
	switch {
	case ce.Status == connectors.StatusMisconfigured:
		cr.Message = "Connector " + id + " cannot connect until an admin fixes it: " + ce.Reason + "."
		cr.URL = ""
	case consent == oauthflow.Shared:
		cr.Message = "Connector " + id + " is shared: " + ce.Reason + "."
	default:
		cr.Message = "Connector " + id + " needs your consent: " + ce.Reason + "."
	}
	return cr
}

// ConnectTag binds a connect link to the user it was made for, without
// naming them: the Connectors page refuses a link opened by anyone else,
// so that a link an agent was handed cannot lure another user into
// consenting (URL mode elicitation, "Phishing"). An HMAC, so that no one
// without the key can make a tag for a user, and the link shows no user
// id (often an email) to whoever reads the agent's transcript; 128 bits
// of it are plenty against forgery and keep the link short.
func (g *Gateway) ConnectTag(user string) string {
	if g.o.ConnectKey == nil {
		return ""
	}
	return userTag(g.o.ConnectKey, user)
}

// ConnectURL is the page where a user connects connector id.
func (g *Gateway) ConnectURL(id string) string {
	return strings.TrimSuffix(g.o.OAuth.PublicURL, "/") + "/connectors?connect=" + url.QueryEscape(id)
}

// Live holds the generation serving now. The zero Live holds none; Set
// gives it one. Readers load the current pointer without a lock; mu
// guards only the list of retired generations, which Set and Close
// change.
type Live struct {
	cur     atomic.Pointer[Gateway]
	mu      sync.Mutex
	retired []*Gateway // replaced, still serving a request; closed when idle, or at Close
}

// Current returns the generation serving now, without counting a use:
// for reads that need no mux beyond the moment.
func (l *Live) Current() *Gateway { return l.cur.Load() }

// Acquire returns the generation serving now, counted as in use until
// Leave: a replacement may come meanwhile, but its mux stays open until
// the requests on it end.
func (l *Live) Acquire() *Gateway {
	for {
		g := l.cur.Load()
		if g.uses.Add(1)&retiredBit == 0 {
			return g
		}
		g.Leave() // replaced between the load and the count: take the new one
	}
}

// Leave ends a use that Acquire began.
func (g *Gateway) Leave() {
	if g.uses.Add(-1) == retiredBit {
		g.close()
	}
}

// Set makes g the generation serving now, and retires the one it
// replaces: closed now if idle, else when its last request leaves. The
// swap comes before the retirement, so that a request arriving from now
// on finds g, and one that counted itself into old before the bit was
// set keeps old open until it leaves. The agents listening hear of a
// new registry generation once g serves (announce).
func (l *Live) Set(g *Gateway) {
	old := l.cur.Swap(g)
	if old == nil {
		return
	}
	g.announce(old)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retired = append(slices.DeleteFunc(l.retired, func(g *Gateway) bool { return g.closed.Load() }), old)
	if old.uses.Or(retiredBit) == 0 {
		old.close()
	}
}

// Close closes every generation, the current one and those still
// serving a request: the config is going. A retired one is kept in the
// list until then for this reason: a stream that never ends would
// otherwise keep its mux, and its upstream connections, past the config.
func (l *Live) Close() {
	if g := l.cur.Load(); g != nil {
		g.close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, g := range l.retired {
		g.close() // one still streaming to an agent
	}
}

// close closes g's mux and its OAuth manager, once.
func (g *Gateway) close() {
	g.closing.Do(func() {
		_ = g.mux.Close()
		g.closeManager()
		g.closed.Store(true)
	})
}

// closeManager ends the OAuth manager's subscription to other instances'
// grant changes, if g has a manager.
func (g *Gateway) closeManager() {
	if g.manager != nil {
		g.manager.Close()
	}
}
