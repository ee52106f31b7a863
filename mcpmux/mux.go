// Package mcpmux is the MCP side of mcpgate: it serves agents over
// streamable HTTP in both protocol eras, fans their lists out to the
// upstream connectors they are granted, and routes their calls, checking
// the grants on every list and every call. It knows nothing of Caddy.
package mcpmux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Defaults for Options.
const (
	// DefaultMaxBody bounds an agent's request body. The body is read
	// whole, since it must pass the strict JSON check before anything
	// routes on it, so this is the memory one request can make the
	// gateway hold; 4 MiB is far above any tool call's arguments.
	DefaultMaxBody = 4 << 20
	// DefaultListTTL is how long an upstream list is served from cache.
	// list_changed invalidates a list at once; the TTL bounds how long a
	// change goes unseen when no notification comes (an upstream without
	// listChanged, or a notification stream that broke).
	DefaultListTTL = 5 * time.Minute
	// DefaultPageSize puts a caller's whole view in one page: 10,000
	// upstream tools and the gateway's own, with room to spare. A list
	// the agent follows cursor by cursor costs it a round trip a page,
	// and the gateway holds the whole view anyway (it filters the grants
	// over every item), so smaller pages would bound nothing but add
	// requests. In bytes it stays reasonable: about 1.6 MB for 10,000
	// small tools, some 10 MB at 1 KB a definition, which an agent reads
	// whole whatever the pages. Pagination still works: agents must
	// follow nextCursor, and a smaller PageSize makes pages.
	DefaultPageSize = 20_000
)

// Options configure a Mux. The zero value of every field but Connectors and
// Policy is a sensible default.
type Options struct {
	// Connectors are the upstreams. New validates each and refuses an id
	// given twice; the Mux keeps the pointers and never changes them, so
	// a new set of connectors needs a new Mux.
	Connectors []*connectors.Connector
	// Policy decides what each caller may see and use; nil denies all.
	// It is asked on every request, so a request is always judged by the
	// grants of the Mux that serves it.
	Policy *grants.Policy
	// Credentials supplies upstream credentials; nil means each
	// connector's static one. It is called on the request path for every
	// request that reaches an upstream, concurrently: with a cached token
	// it must answer without I/O.
	Credentials Credentials
	// Separator joins connector ids and names: "_" (default) or "__".
	Separator string
	// MaxBody caps an agent's request body. Default DefaultMaxBody.
	MaxBody int64
	// ListTTL is how long upstream lists are cached. Default DefaultListTTL.
	ListTTL time.Duration
	// PageSize is how many items one page of an aggregated list holds.
	// Default DefaultPageSize.
	PageSize int
	// Transport carries upstream requests; nil means a pooled transport
	// the Mux owns and Close releases. A transport given here is the
	// caller's: Close leaves it alone.
	Transport http.RoundTripper
	// Logger receives the gateway's logs; nil discards them.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AllowedOrigins are browser origins, besides the request's own host,
	// that may call the MCP endpoints.
	AllowedOrigins []string
	// AllowedHosts are the gateway's host names, exact or "*.suffix",
	// besides loopback names: a request whose Host or Origin names
	// another is refused, against DNS rebinding. With none, a gateway
	// listening on loopback accepts only loopback names, and one on
	// another address leaves the Host to Caddy's site matching.
	AllowedHosts []string
	// StateKey seals the requestState the gateway issues with its own
	// input requests (2026-07-28); instances that serve the same agents
	// share it. Nil means a random key of this Mux's own.
	StateKey []byte
	// Sessions keeps legacy agent sessions; nil means a store of the
	// Mux's own, which Close ends. A shared one outlives the Mux.
	Sessions *Sessions
	// Streams keeps the agents' open notification streams and the legacy
	// sessions' resource subscriptions; nil means a set of the Mux's own,
	// which Close ends. A shared one outlives the Mux, so that its streams
	// stay open across a reload and hear of the changes the Mux that
	// replaces it announces (Reloaded), and the subscriptions pass to that
	// Mux.
	Streams *Streams
	// SessionKey, 32 bytes, seals the legacy session ids the Mux issues,
	// which then hold the session (caller, endpoint, protocol version,
	// capabilities, issue time), so that every instance holding the same
	// key serves a session any of them opened, for SessionMaxAge. It needs
	// Ended. Nil means random ids, served by the Sessions that holds them.
	SessionKey []byte
	// Ended records the sessions DELETEd through any instance, so that
	// none resumes them. It is required with SessionKey, and unused
	// without it.
	Ended SessionEnds
	// Annotate, when set, is told which connector and item each agent
	// request is routed to, so that access logs can show it. It runs on
	// the request's goroutine before the upstream is called.
	Annotate func(r *http.Request, connector, name string)
	// OnDrift, when set, is told of each pinned tool or prompt whose
	// definition no longer matches its pin when a list is fetched; the
	// item is left out (a changed definition is the "rug pull" a pin
	// exists to stop). It is told too of a tool whose pin an older
	// version made and still matches, which is served, so that it is
	// re-pinned. It runs while the list's cache entry is locked, on every
	// fetch that sees the item: it must not block, nor ask this Mux for
	// lists.
	OnDrift func(kind connectors.PinKind, connector, name string, definition json.RawMessage)
	// OnListChanged, when set, is told of each list_changed notification
	// an upstream sends here, by connector and notification method, so
	// that the other instances of a cluster can act on it too
	// (ListChanged). It runs on the reader of the upstream's stream: it
	// must not block.
	OnListChanged func(connector, method string)
	// Observer, when set, is told of every tool call and every upstream
	// request, for audit logs and metrics.
	Observer Observer
	// Approval, when set, decides the tool calls that the grants say wait
	// for a person's approval; without it no call waits.
	Approval Approval
	// ToolSearch is how the aggregated endpoint lists tools; a site's
	// setting (WithToolSearch) wins over it. Default off.
	ToolSearch ToolSearch
	// AlwaysList are globs over "<connector>/<tool>" of the granted tools
	// that search mode lists besides the search tools.
	AlwaysList []string
	// Used, when set, is told of each request routed to an upstream on a
	// caller's behalf (tools/call, resources/read, prompts/get,
	// completion/complete) and of each credential asked for an HTTP API
	// request (Credential), for a last-used record. It runs on the
	// request path of every call: it must be quick, an atomic store.
	Used func(connector, caller string)
}

// Mux serves MCP to agents from the upstream connectors.
type Mux struct {
	conns    map[string]*connectors.Connector
	order    []string
	policy   *grants.Policy
	creds    Credentials
	names    names
	maxBody  int64
	ttl      time.Duration
	pageSize int
	client   *http.Client
	owned    *http.Transport
	logger   *zap.Logger
	now      func() time.Time
	annotate func(r *http.Request, connector, name string)
	onDrift  func(kind connectors.PinKind, connector, name string, definition json.RawMessage)
	onLists  func(connector, method string)
	observer Observer
	used     func(connector, caller string)
	approval Approval
	search   searcher

	// The three maps are read on every request and written seldom (once
	// per key; an answer again when its lists change), the case sync.Map
	// is made for: readers take no lock.
	upstreams sync.Map // upstreamKey → *upstream
	cache     sync.Map // cacheKey → *cacheEntry
	answers   sync.Map // answerKey → *readyList, within maxAnswers and maxAnswerBytes
	// answerCount and answerBytes tally answers; listVersion counts the
	// changes that retire them (aggregate.go).
	answerCount, answerBytes atomic.Int64
	listVersion              atomic.Uint64
	// staticCreds: the credentials are each connector's own, the same
	// for every caller and never changing (Options.Credentials is nil).
	staticCreds bool
	sessions    *Sessions
	ownsSess    bool
	streams     *Streams
	ownsStrm    bool
	subs        *subscriptions // the streams', which outlive the Mux
	origins     map[string]bool
	hosts       hostPolicy
	states      stateSealer
	// sessionSeal seals session ids, when Options.SessionKey is set; ends
	// is Options.Ended then.
	sessionSeal *sealer
	ends        SessionEnds
	parked      parkedCalls
	// closed is closed by Close, which is how agent streams learn to end;
	// ctx ends with it, for the goroutines that take a context.
	closed chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	// life orders background starts before Close's wait: a WaitGroup's
	// Add must not race with its Wait, so background checks closed and
	// calls Add under the lock that Close takes to close it.
	life sync.Mutex
	bg   sync.WaitGroup
}

// upstreamKey names one upstream connection. It is per credential, not
// per connector: a session opened with one user's token must never carry
// another user's call, and what an upstream lists may depend on whose
// token asks (the cross-tenant leak of a shared MCP session).
type upstreamKey struct{ connector, credential string }

// New builds a Mux. It fails on an invalid connector, an id given twice or
// a bad separator; it makes no network request. The Mux starts goroutines
// as agents use it: Close it when done.
func New(opts Options) (*Mux, error) {
	m := &Mux{
		conns:    map[string]*connectors.Connector{},
		policy:   opts.Policy,
		creds:    opts.Credentials,
		names:    names{sep: opts.Separator},
		maxBody:  opts.MaxBody,
		ttl:      opts.ListTTL,
		pageSize: opts.PageSize,
		logger:   opts.Logger,
		now:      opts.Now,
		annotate: opts.Annotate,
		onDrift:  opts.OnDrift,
		onLists:  opts.OnListChanged,
		observer: opts.Observer,
		used:     opts.Used,
		approval: opts.Approval,
		origins:  map[string]bool{},
		hosts:    newHostPolicy(opts.AllowedHosts),
		closed:   make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for _, o := range opts.AllowedOrigins {
		m.origins[o] = true
	}
	if err := m.setDefaults(opts); err != nil {
		return nil, err
	}
	if err := m.search.init(opts); err != nil {
		return nil, err
	}
	states, err := newStateSealer(opts.StateKey)
	if err != nil {
		return nil, err
	}
	m.states = states
	if err := m.setSessionKey(opts); err != nil {
		return nil, err
	}
	for _, c := range opts.Connectors {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if _, dup := m.conns[c.ID]; dup {
			return nil, fmt.Errorf("connector %q is defined twice", c.ID)
		}
		m.conns[c.ID] = c
		m.order = append(m.order, c.ID)
	}
	// Id order makes every aggregated list the same from one request to
	// the next, which the offset in a list cursor relies on.
	sort.Strings(m.order)
	if m.creds == nil {
		m.creds, m.staticCreds = Static(opts.Connectors), true
	}
	m.sessions, m.ownsSess = opts.Sessions, opts.Sessions == nil
	if m.ownsSess {
		m.sessions = NewSessions()
	}
	m.streams, m.ownsStrm = opts.Streams, opts.Streams == nil
	if m.ownsStrm {
		m.streams = NewStreams()
	}
	m.subs = &m.streams.subs
	m.streams.muxes.join(m)
	return m, nil
}

// setDefaults fills in what opts leaves out.
func (m *Mux) setDefaults(opts Options) error {
	// Connector ids hold no underscore, so either separator splits a wire
	// name unambiguously (names.go); any other would not.
	switch m.names.sep {
	case "":
		m.names.sep = "_"
	case "_", "__":
	default:
		return fmt.Errorf("separator %q must be _ or __", m.names.sep)
	}
	if m.maxBody <= 0 {
		m.maxBody = DefaultMaxBody
	}
	if m.ttl <= 0 {
		m.ttl = DefaultListTTL
	}
	if m.pageSize <= 0 {
		m.pageSize = DefaultPageSize
	}
	if m.logger == nil {
		m.logger = zap.NewNop()
	}
	if m.now == nil {
		m.now = time.Now
	}
	rt := opts.Transport
	if rt == nil {
		m.owned = NewTransport()
		rt = m.owned
	}
	// Upstream redirects are not followed: a redirect could carry the
	// injected credential to another host.
	m.client = &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return nil
}

// setSessionKey builds the sealer of session ids, if opts has a key.
func (m *Mux) setSessionKey(opts Options) error {
	if err := checkSessionKey(opts); err != nil || opts.SessionKey == nil {
		return err
	}
	s, err := newSealer(opts.SessionKey)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	m.sessionSeal, m.ends = &s, opts.Ended
	return nil
}

// NewTransport returns the pooled transport mcpgate uses for upstreams:
// keep-alive, with enough idle connections per host for many concurrent
// agents sharing one upstream. The caller owns it, and closes its idle
// connections when done.
func NewTransport() *http.Transport {
	// No proxy from the environment: requests carry credentials, and go
	// to the connector's own host. The dial and handshake timeouts bound
	// an unreachable upstream; a request's own deadline comes from its
	// context. Go's default of 2 idle connections per host would make
	// concurrent agents of one upstream open and close one per call.
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Close ends every agent stream and releases idle upstream connections.
// It waits for the Mux's background goroutines, and is safe to call more
// than once. Sessions and Streams given in Options stay open.
func (m *Mux) Close() error {
	// The order matters: closed first, so that no background goroutine
	// starts after the wait begins and agent streams end; then the
	// context, which ends upstream listeners and parked calls; then the
	// Mux's own sessions; and idle connections last, once nothing that
	// could still use one runs.
	m.life.Lock()
	select {
	case <-m.closed:
		m.life.Unlock()
		return nil
	default:
	}
	close(m.closed)
	m.life.Unlock()
	m.handOver()
	if m.ownsStrm {
		m.streams.Close()
	}
	m.cancel()
	if m.ownsSess {
		m.sessions.Close()
	}
	m.bg.Wait()
	if m.owned != nil {
		m.owned.CloseIdleConnections()
	}
	return nil
}

// Connector returns the connector with the given id, whether or not any
// caller may see it. The Mux reads it on every request: the caller must
// not change it.
func (m *Mux) Connector(id string) (*connectors.Connector, bool) {
	c, ok := m.conns[id]
	return c, ok
}

// upstream returns the shared connection for (connector, credential).
func (m *Mux) upstream(c *connectors.Connector, cred Credential) *upstream {
	u := m.upstreamFor(c, cred.Key)
	if cred.RoundTrip != nil {
		// The latest: a refreshed token's sends as well as the one before.
		u.sender.Store(&cred.RoundTrip)
	}
	return u
}

// upstreamFor returns the shared connection for (connector, credKey).
func (m *Mux) upstreamFor(c *connectors.Connector, credKey string) *upstream {
	key := upstreamKey{c.ID, credKey}
	// Load first: LoadOrStore would build a new upstream on every call
	// only to throw it away, and this runs on every upstream request.
	if u, ok := m.upstreams.Load(key); ok {
		return u.(*upstream)
	}
	u, _ := m.upstreams.LoadOrStore(key, &upstream{conn: c, credKey: credKey, client: m.client, logger: m.logger, now: m.now,
		onNotify: m.upstreamNotified, onUpdated: m.resourceUpdated, background: m.background, observer: m.observer})
	return u.(*upstream)
}

// background runs f in a goroutine that Close waits for, or not at all
// once Close has begun, which it reports with false. f must return soon
// after ctx ends.
func (m *Mux) background(f func(ctx context.Context)) bool {
	m.life.Lock()
	defer m.life.Unlock()
	select {
	case <-m.closed:
		return false
	default:
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		f(m.ctx)
	}()
	return true
}

// credential asks the credential source for (caller, connector).
func (m *Mux) credential(ctx context.Context, req CredentialRequest) (Credential, error) {
	cred, err := m.creds(ctx, req)
	if err != nil {
		return Credential{}, err
	}
	// An empty key would put every caller in one upstream session and
	// one list cache, whatever their tokens: refuse it rather than share.
	if cred.Key == "" {
		return Credential{}, errors.New("credential source returned no key")
	}
	return cred, nil
}

// credentialFor returns the caller's credential at connector for this
// request, asking the credential source once however many times the
// request needs it: on the hot path a tools/call needs it to find the tool
// in the cache and again to forward the call.
func (m *Mux) credentialFor(x *exchange, c *connectors.Connector) (Credential, error) {
	for _, used := range x.creds {
		if used.connector == c.ID {
			return used.Credential, nil
		}
	}
	cred, err := m.credential(x.ctx, CredentialRequest{Caller: x.caller, Connector: c})
	if err != nil {
		return Credential{}, err
	}
	x.creds = append(x.creds, usedCredential{c.ID, cred})
	return cred, nil
}

// upstreamNotified acts on an upstream's notification: list_changed
// makes the cached lists it names stale, and fetches them again in the
// background, so that listening agents are told only when what they can
// see has changed (resources/list_changed names two lists).
func (m *Mux) upstreamNotified(u *upstream, method string) {
	var kinds []*listKind
	for _, kind := range listKinds {
		if kind.changed == method {
			kinds = append(kinds, kind)
		}
	}
	if len(kinds) == 0 {
		return
	}
	for _, kind := range kinds {
		m.invalidate(u.conn.ID, kind)
	}
	if m.onLists != nil {
		m.onLists(u.conn.ID, method)
	}
	// This runs on the reader of an upstream stream, which must go on
	// reading; and the fetch must outlive the request whose stream the
	// notification came on. So it runs in the background, until Close.
	m.background(func(ctx context.Context) { m.relist(ctx, u.conn, u.credKey, kinds) })
}

// ListChanged acts on another instance's news that connector's upstream
// sent method, a list_changed notification: the lists it names go stale
// here too, for every credential, and those fetched before are fetched
// again, so that the agents listening here hear of a change in their view
// as they would had the upstream told this instance itself. An unknown
// connector or method is ignored: the news may come from an instance on
// another config.
func (m *Mux) ListChanged(connector, method string) {
	c, ok := m.Connector(connector)
	if !ok {
		return
	}
	var kinds []*listKind
	for _, kind := range listKinds {
		if kind.changed == method {
			kinds = append(kinds, kind)
			m.invalidate(connector, kind)
		}
	}
	if len(kinds) == 0 {
		return
	}
	creds := map[string]bool{}
	m.cache.Range(func(k, _ any) bool {
		if key := k.(cacheKey); key.connector == connector {
			creds[key.credential] = true
		}
		return true
	})
	for credKey := range creds {
		m.background(func(ctx context.Context) { m.relist(ctx, c, credKey, kinds) })
	}
}

// view returns what caller may see. It is asked of the current policy on
// every request, never kept on a session, so that a grant withdrawn by a
// reload holds from the next request on (the policy caches it, for as
// long as that policy is the current one).
func (m *Mux) view(caller grants.Caller) *grants.View {
	return m.policy.For(caller)
}

// visible returns the MCP connectors in scope that the view can see, in
// id order: every one for the aggregated endpoint, or just scope. A
// connector that is only an HTTP API is never among them, so that no list,
// fan-out or route ever speaks MCP to it; nor is a disabled one, whose
// items leave every list and whose upstream is asked nothing.
func (m *Mux) visible(v *grants.View, scope string) []*connectors.Connector {
	var out []*connectors.Connector
	for _, c := range m.known(v) {
		if (scope == "" || scope == c.ID) && c.URL != nil && !c.Disabled {
			out = append(out, c)
		}
	}
	return out
}

// known returns every connector the view can see, MCP or HTTP API, in id
// order: what the caller is told about, not what the gateway talks MCP to.
func (m *Mux) known(v *grants.View) []*connectors.Connector {
	var out []*connectors.Connector
	for _, id := range m.order {
		if v.Visible(id) {
			out = append(out, m.conns[id])
		}
	}
	return out
}

// offersBuiltin reports whether the aggregated endpoint offers the caller
// mcpgate_list_connectors: when it can see some connector.
func (m *Mux) offersBuiltin(x *exchange) bool {
	return x.scope == "" && slices.ContainsFunc(m.order, x.view.Visible)
}

// speaksMCP reports whether connector id exists and has an MCP endpoint.
func (m *Mux) speaksMCP(id string) bool {
	c, ok := m.conns[id]
	return ok && c.URL != nil
}
