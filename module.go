// Package mcpgate is a Caddy app and HTTP handler that serve remote MCP
// servers (connectors) to agents through one MCP endpoint, with grants
// checked on every list and call and credentials injected server-side.
package mcpgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	// The `caddy mcpgate …` command lives in package cli, which registers
	// it with Caddy when imported. xcaddy builds import only this root
	// package of the module, so the root imports cli to bring the command
	// into every caddy binary built with mcpgate. (cli imports nothing of
	// the root.)
	"github.com/mcpgate/caddy-mcpgate/approvals"
	_ "github.com/mcpgate/caddy-mcpgate/cli"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/observe"
	"github.com/mcpgate/caddy-mcpgate/web"
)

func init() {
	caddy.RegisterModule(App{})
	caddy.RegisterModule(Handler{})
}

// DefaultIdentity is the placeholder that names the caller when the config
// sets none: the user that Caddy's authentication handlers identified.
const DefaultIdentity = "{http.auth.user.id}"

// App is the mcpgate app: the connectors, the grants and the gateway that
// serves them. Sites serve it with the mcpgate handler.
type App struct {
	// PublicURL is the external base URL of the gateway. Browsers on its
	// origin may call the MCP endpoints. Default: none; only requests
	// without an Origin, or from the request's own host, are served.
	PublicURL string `json:"public_url,omitempty"`

	// Identity is a placeholder (or a literal) that names the caller.
	// Default: {http.auth.user.id}. An empty value is answered with 401.
	Identity string `json:"identity,omitempty"`

	// Groups is a placeholder whose value lists the caller's groups,
	// separated by commas or spaces. Default: none.
	Groups string `json:"groups,omitempty"`

	// ToolSeparator joins a connector id and a tool or prompt name:
	// "_" (default) or "__".
	ToolSeparator string `json:"tool_separator,omitempty"`

	// MaxRequestBody caps an agent's request body in bytes; a larger one is
	// answered with 413. Default: 4 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`

	// ListCacheTTL is how long an upstream's lists are served from cache
	// before they are fetched again. list_changed notifications invalidate
	// them sooner. Default: 5m.
	ListCacheTTL caddy.Duration `json:"list_cache_ttl,omitempty"`

	// Storage is where OAuth clients and tokens are kept. Default: Badger
	// in Caddy's data directory.
	Storage *StorageConfig `json:"storage,omitempty"`

	// SealKeys is the key ring that seals every stored record: base64 of
	// 32 bytes each, best given as {env.*} or {file.*} placeholders. The
	// first key seals; all of them open, so a new key goes first and an
	// old one stays until every record is rewrapped. Default: a key
	// generated into Caddy's data directory, with a warning.
	SealKeys []string `json:"seal_keys,omitempty"`

	// AllowedRedirects are origins (scheme://host[:port]), besides
	// PublicURL's, that a consent flow may send the browser back to.
	AllowedRedirects []string `json:"allowed_redirects,omitempty"`

	// AllowedHosts are host names, exact or "*.example.com", besides
	// PublicURL's and loopback names, that requests to the MCP endpoints
	// may give in Host and Origin (DNS rebinding protection).
	AllowedHosts []string `json:"allowed_hosts,omitempty"`

	// Presets describe remote MCP servers that runtime connectors match by
	// URL; they extend and override the built-in catalog.
	Presets []connectors.PresetConfig `json:"presets,omitempty"`

	// DisableBuiltinPresets leaves out the built-in preset catalog, so
	// that only Presets are matched and shown. Default: false.
	DisableBuiltinPresets bool `json:"disable_builtin_presets,omitempty"`

	// Connectors are the upstream MCP servers.
	Connectors []connectors.Config `json:"connectors,omitempty"`

	// Grants decide who may see and use what. No grant, no access.
	Grants []grants.Rule `json:"grants,omitempty"`

	// Approvers may approve or deny the calls that a grant's approve
	// makes wait: sources as in a grant's src ("user:<id>",
	// "group:<name>", "*"). Default: every caller with role admin in some
	// grant.
	Approvers []string `json:"approvers,omitempty"`

	// ApprovalTTL is how long a call waits for an approver, and how long
	// an approval then waits for the call's retry. Default: 10m.
	ApprovalTTL caddy.Duration `json:"approval_ttl,omitempty"`

	// ApprovalWebhook is an http or https URL that gets a JSON notice of
	// each new approval request (id, caller, connector, tool, url,
	// expires; never the arguments), best effort. Default: none.
	ApprovalWebhook string `json:"approval_webhook,omitempty"`

	// SelfApprove lets a caller approve its own call. Default: false, so
	// that an approval is always a second person's.
	SelfApprove bool `json:"self_approve,omitempty"`

	// ToolSearch is how /mcp lists tools: every granted tool (mode
	// "off", the default), or mcpgate_search_tools and mcpgate_call_tool
	// in their place ("on"; "auto" for a caller whose view holds more
	// than threshold tools, default 100). A site's own setting wins.
	ToolSearch *mcpmux.ToolSearch `json:"tool_search,omitempty"`

	// AlwaysList are globs over "<connector>/<tool>" of the tools that
	// search mode lists too, to the callers granted them. Default: none.
	AlwaysList []string `json:"always_list,omitempty"`

	registry  *connectors.Registry
	sessions  *mcpmux.Sessions
	streams   *mcpmux.Streams      // the agents' notification streams, which outlive a reload
	consents  *gateway.ConsentNews // tells agents of consents given and withdrawn
	lists     *gateway.ListNews    // tells the other instances of upstreams' list changes; nil on a store of one's own
	removals  *gateway.Removals    // revocations of connectors gone from the config
	logger    *zap.Logger
	sealKeys  [][]byte
	storePath string          // the Badger directory, for storage badger
	storeDSN  string          // the PostgreSQL connection string, for storage postgres; may hold a password
	gw        gateway.Options // what every generation of the gateway shares
	live      *gateway.Live   // the generation serving now
	vault     *vault
	apis      *apiProxies
	obs       *observe.Observer // the audit log and metrics (observe.go)
	approvers *grants.Sources   // Approvers compiled; nil: the admins (approval.go)
	approvals *approvalSlot     // the approvals service, once the store opens
}

// sessionPool keeps the agents' legacy sessions across config reloads, so
// that a reload costs agents nothing: the store holds no grant decision,
// and each request is judged by the config that serves it.
var sessionPool = caddy.NewUsagePool()

// sessionPoolKey names the one session store in sessionPool.
const sessionPoolKey = "mcpgate.sessions"

// sessionStore lets the pool end the sessions, and the notification
// streams opened on them, when the last config that uses them goes: both
// outlive a reload, which the streams then hear of (Cleanup).
type sessionStore struct {
	*mcpmux.Sessions
	streams *mcpmux.Streams
}

// Destruct implements caddy.Destructor.
func (s sessionStore) Destruct() error {
	s.streams.Close()
	s.Close()
	return nil
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "mcpgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves secrets, builds the connectors and grants, and sets up
// the gateway. It does no I/O: upstreams are contacted on first use, and
// the store opens at Start, because `caddy validate` provisions in a
// second process beside the server that holds the database's lock. The
// steps run in this order because each uses the one before: the gateway's
// options carry the observer, and the registry checks every connector
// with those options.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.provisionObservability(ctx); err != nil {
		return err
	}
	a.live = new(gateway.Live)
	if a.Identity == "" {
		a.Identity = DefaultIdentity
	}
	// Only the global placeholders ({env.*}, {file.*}, {system.*}): secrets
	// resolve once, here, and never from a request.
	repl := caddy.NewReplacer()
	a.vault = new(vault)
	if err := a.provisionOAuth(repl); err != nil {
		return err
	}
	if err := a.provisionGateway(); err != nil {
		return err
	}
	if err := a.provisionApprovals(); err != nil {
		return err
	}
	if err := a.provisionRegistry(repl); err != nil {
		return err
	}
	a.gw.Presets = a.registry.Presets()
	// The gateway of the config alone, which checks it; Start replaces it
	// with one that adds the runtime connectors and the OAuth manager.
	// Caddy starts apps in no set order, so the http app may serve this
	// one for a moment, in which OAuth connectors answer that the store
	// is not open yet.
	g, err := gateway.Build(&a.gw, a.registry.Snapshot())
	if err != nil {
		return err
	}
	a.warnUnknownGrants(g.Policy())
	a.live.Set(g)
	return a.provisionAPIs(ctx, g.Connectors())
}

// provisionGateway sets up what every generation of the gateway shares:
// the session store, which outlives a config reload, and the checks of
// the Host and Origin of requests (DNS rebinding and cross-site request
// forgery), which public_url and allowed_hosts widen.
func (a *App) provisionGateway() error {
	var origins []string
	hosts := slices.Clone(a.AllowedHosts)
	for _, h := range hosts {
		if err := checkHost(h); err != nil {
			return err // JSON config skips the Caddyfile's check
		}
	}
	if a.PublicURL != "" {
		if err := checkPublicURL(a.PublicURL); err != nil {
			return err
		}
		u, _ := url.Parse(a.PublicURL)
		origins = append(origins, u.Scheme+"://"+u.Host)
		hosts = append(hosts, u.Hostname())
	}
	csrf := http.NewCrossOriginProtection()
	for _, origin := range origins {
		if err := csrf.AddTrustedOrigin(origin); err != nil {
			return fmt.Errorf("public_url: %v", err)
		}
	}
	store, _, err := sessionPool.LoadOrNew(sessionPoolKey, func() (caddy.Destructor, error) {
		return sessionStore{mcpmux.NewSessions(), mcpmux.NewStreams()}, nil
	})
	if err != nil {
		return err
	}
	a.sessions, a.streams = store.(sessionStore).Sessions, store.(sessionStore).streams
	a.consents = &gateway.ConsentNews{Live: a.live, Logger: a.logger}
	// Each call is a use of its connector: kept in memory on the call
	// path, flushed to the store now and then (flushUsage).
	usage := new(connectors.Usage)
	a.gw = gateway.Options{
		Mux: mcpmux.Options{
			Sessions: a.sessions, Streams: a.streams, Separator: a.ToolSeparator, MaxBody: a.MaxRequestBody,
			ListTTL: time.Duration(a.ListCacheTTL), AllowedOrigins: origins, AllowedHosts: hosts,
			Logger: a.logger.Named("mux"), Annotate: annotate, OnDrift: a.toolDrifted, Observer: a.obs,
			Used: usage.Touch, AlwaysList: a.AlwaysList,
		},
		OAuth: oauthflow.Options{
			PublicURL: strings.TrimSuffix(a.PublicURL, "/"), AllowedRedirects: a.AllowedRedirects,
			Logger: a.logger.Named("oauth"), ClientName: "mcpgate", OnEvent: a.oauthEvent,
		},
		CSRF: csrf, Usage: usage, Logger: a.logger,
	}
	if a.ToolSearch != nil {
		a.gw.Mux.ToolSearch = *a.ToolSearch
	}
	a.removals = &gateway.Removals{OAuth: &a.gw.OAuth, Audit: a.obs.AdminChange, Logger: a.logger}
	return nil
}

// provisionRegistry resolves the {env.*} and {file.*} placeholders of the
// config's connectors and presets, and checks them into the registry.
func (a *App) provisionRegistry(repl *caddy.Replacer) error {
	expand := func(s string) (string, error) { return repl.ReplaceOrErr(s, true, true) }
	opts := connectors.Options{Check: a.gw.Check, Grants: a.Grants, NoBuiltinPresets: a.DisableBuiltinPresets, Errors: func(err error) {
		a.logger.Error("the registry's background work (following other instances, re-pins, drift records)", zap.Error(err))
	}, Repinned: a.toolsRepinned, DriftSeen: a.driftSeen}
	if a.storeDSN != "" {
		// Instances sharing PostgreSQL apply each other's changes on a
		// notice; the poll bounds the delay when one is lost.
		opts.Poll = registryPoll
	}
	for _, cfg := range a.Connectors {
		cfg, err := cfg.Expanded(expand)
		if err != nil {
			return err
		}
		opts.Config = append(opts.Config, cfg)
	}
	for _, p := range a.Presets {
		p, err := p.Expanded(expand)
		if err != nil {
			return err
		}
		opts.Presets = append(opts.Presets, p)
	}
	var err error
	if a.registry, err = connectors.NewRegistry(opts); err != nil {
		return err
	}
	// Drift is recorded in the registry without a new generation: the
	// Connectors page reads it there.
	a.gw.Latest = a.registry.Snapshot
	return nil
}

// warnUnknownGrants warns about the config's grant patterns, compiled in
// policy, that name no defined connector: a typo there silently grants
// nothing.
func (a *App) warnUnknownGrants(policy *grants.Policy) {
	ids := make([]string, len(a.Connectors))
	for i, c := range a.Connectors {
		ids[i] = c.ID
	}
	for _, name := range policy.UnknownConnectors(ids) {
		a.logger.Warn("a grant names a connector that the config does not define; it grants nothing unless a runtime connector takes that id",
			zap.String("connector", name))
	}
}

// approvalSlot holds the approvals service once the store is open; nil
// before, when every call that needs approval is refused (fail closed).
type approvalSlot struct {
	atomic.Pointer[approvals.Service]
}

// provisionApprovals checks the approval settings, which the JSON config
// may hold without the Caddyfile's checks, compiles the approvers, and
// wires the approvals into what every generation of the gateway shares:
// the mux asks them on calls, the site serves their pages.
func (a *App) provisionApprovals() error {
	if a.ApprovalTTL < 0 {
		return errors.New("approval_ttl must be positive")
	}
	if a.ApprovalWebhook != "" {
		if err := approvals.CheckWebhookURL(a.ApprovalWebhook); err != nil {
			return err
		}
	}
	if len(a.Approvers) > 0 {
		approvers, err := grants.CompileSources(a.Approvers)
		if err != nil {
			return fmt.Errorf("approvers: %w", err)
		}
		a.approvers = approvers
	}
	a.approvals = new(approvalSlot)
	a.gw.Mux.Approval = gateway.ApprovalGate(a.approvals.Load, a.PublicURL)
	a.gw.Approvals = web.Approvals{Service: a.approvals.Load, Approvers: a.approvers, SelfApprove: a.SelfApprove}
	return nil
}

// startApprovals opens the approvals on the store, sealed: a request
// holds the arguments an approver is shown. Instances sharing the store
// share the requests.
func (a *App) startApprovals() error {
	o := approvals.Options{Store: a.vault.sealed, TTL: time.Duration(a.ApprovalTTL), SelfApprove: a.SelfApprove, OnEvent: a.obs.Approval}
	if a.ApprovalWebhook != "" {
		page := func(id string) string { return gateway.ApprovalURL(a.PublicURL, id) }
		hook, err := approvals.NewWebhook(a.ApprovalWebhook, page, nil, a.logger.Named("approvals"))
		if err != nil {
			return err
		}
		o.OnRequest = hook.Send
	}
	s, err := approvals.New(o)
	if err != nil {
		return err
	}
	a.approvals.Store(s)
	a.obs.SetApprovals(s.Pending)
	return nil
}

// Validate checks the provisioned app. Everything it can check is checked
// while provisioning, so there is nothing left.
func (a *App) Validate() error { return nil }

// Start implements caddy.App. It opens the store, so that a wrong seal key
// stops the config here rather than at the first call, and adds the
// runtime connectors kept there. Upstreams are contacted lazily. What
// Start acquires, Cleanup releases: Caddy calls Cleanup, not Stop, for an
// app whose own Start failed.
func (a *App) Start() error {
	if err := a.openVault(); err != nil {
		return err
	}
	if err := a.startApprovals(); err != nil {
		return err
	}
	// Watch before Open, so that Open's announcement already builds the
	// generation with the runtime connectors and the OAuth manager.
	a.registry.Watch(a.rebuild)
	if err := a.registry.Open(context.Background(), a.vault.sealed); err != nil {
		return err
	}
	for _, id := range a.registry.Snapshot().Shadowed {
		a.logger.Warn("a runtime connector kept in the store has the id of a connector the config now defines; the config's is served",
			zap.String("connector", id))
	}
	a.startRunning()
	return nil
}

// registryPoll is how often an instance on a shared store checks whether
// another changed the registry: the bound on how late a change whose
// notice was lost takes effect here (the 2 s, with room).
const registryPoll = time.Second

// rebuild puts a generation serving snap in force. The registry calls it,
// under its lock, for every change it announces: generations are built
// one at a time in the order of the changes, so an older snapshot never
// replaces a newer one. An error refuses the change, which the registry
// then undoes.
func (a *App) rebuild(snap *connectors.Snapshot) error {
	g, err := gateway.Build(&a.gw, snap)
	if err != nil {
		return err
	}
	a.live.Set(g)
	return nil
}

// toolDrifted hands the registry a selected tool or prompt whose
// definition changed upstream, to record in the background, so that
// admins see what changed (driftSeen): the mux has already left it out
// of the catalog. The mux calls it while fetching a list, which a
// registry change may be waiting for, under the registry's lock, to
// close the generation it replaces: QueueDrift never takes that lock. A
// tool whose older version's pin still matches is re-pinned instead
// (toolsRepinned).
func (a *App) toolDrifted(kind connectors.PinKind, connector, name string, raw json.RawMessage) {
	a.registry.QueueDrift(kind, connector, name, raw)
}

// driftSeen logs and audits a drift the registry recorded, once per
// distinct drifted definition, with the names of the fields that changed.
func (a *App) driftSeen(d connectors.DriftNotice) {
	a.logger.Warn("a registered "+string(d.Kind)+" changed upstream and is hidden until an admin approves it",
		zap.String("connector", d.Connector), zap.String(string(d.Kind), d.Name), zap.Strings("changed", d.Fields))
	a.obs.Drift(d)
}

// toolsRepinned audits the re-pin of tools whose pin an older version
// made, over description and schemas only: their pins now cover title
// and annotations too, as the upstream lists them at the re-pin.
func (a *App) toolsRepinned(connector string, tools []string) {
	a.obs.AdminChange("", connector, "re-pinned the tools "+strings.Join(tools, ", ")+
		" to cover title and annotations too: their pins, made by an older version, still matched their description and schemas")
}

// Stop implements caddy.App. At a reload it hands the config that
// replaces it what it alone served; everything else is released in
// Cleanup, which Caddy calls after Stop and also when a Start failed or a
// config was only validated.
func (a *App) Stop() error {
	// Caddy stops the old config of a reload once every app of the new
	// one started: what this config served and the new one does not is
	// gone for good only now, and so are the tokens of what it serves
	// bound otherwise. Handed over before a stops counting as running:
	// until then the new config is not alone on the store, so its search
	// for orphans cannot take for an orphan what Removed has not yet
	// claimed.
	if next := a.successor(); next != nil {
		ids := make([]string, len(a.Connectors))
		for i, c := range a.Connectors {
			ids[i] = c.ID
		}
		next.removals.Removed(a.live.Current(), ids, next.registry.Snapshot())
		next.removals.Changed(a.live.Current(), a.registry.Snapshot(), next.registry.Snapshot())
	}
	a.stopRunning()
	return nil
}

// Cleanup releases what this config generation holds: open agent streams,
// idle upstream connections, its use of the store and its use of the
// session store. In a reload it runs after the new generation started,
// so the pools hand the database and the sessions over rather than close
// them.
func (a *App) Cleanup() error {
	if a.registry != nil {
		a.registry.Close() // first: a reload from another instance's change would rebuild the gateway
	}
	a.removals.Stop()      // before closeObservability and closeVault: they audit, and write to the store
	a.closeObservability() // before closeVault: it writes to the store that closeVault may close
	a.apis.cleanup()
	if a.vault != nil {
		a.closeVault()
	}
	if a.sessions != nil {
		if gone, _ := sessionPool.Delete(sessionPoolKey); !gone {
			a.replaced() // a reload: the new config keeps the sessions
		}
	}
	if a.live != nil {
		a.live.Close()
	}
	return nil
}

// replaced tells the agents listening that the config changed, once a no
// longer serves and a new config keeps their streams open: told now,
// they list the new config's view next. A config that never started
// changed nothing.
func (a *App) replaced() {
	if a.registry != nil && a.registry.Snapshot().Generation > 0 {
		a.streams.Changed()
	}
}

// oauthEvent is every OAuth manager's OnEvent: audited, and told to the
// agents whose access it changes.
func (a *App) oauthEvent(e oauthflow.Event) {
	a.obs.OAuthEvent(e)
	a.consents.OAuthEvent(e)
}

// orphanGrace is how long a connector must stay an orphan on a shared
// store before it is purged (gateway.Removals).
const orphanGrace = 24 * time.Hour

// running are the Apps of this process that started and did not stop,
// by their store, oldest first: during a reload, the old config and the
// new one. Caddy starts every app of a new config before it stops the
// old one's, so the old App, at its Stop, finds the one that replaces it.
var running = struct {
	sync.Mutex
	apps map[string][]*App
}{apps: map[string][]*App{}}

// startRunning counts a as running, and starts its search for orphans.
func (a *App) startRunning() {
	running.Lock()
	running.apps[a.vault.path] = append(running.apps[a.vault.path], a)
	running.Unlock()
	if a.storeDSN != "" {
		a.removals.Grace = orphanGrace
	}
	a.removals.WatchOrphans(a.registry.Snapshot, a.alone)
}

// successor returns the newest App started after a on its store, if any:
// the config that replaces it. A config that fails to start is stopped as
// the newest, and replaces nothing.
func (a *App) successor() *App {
	running.Lock()
	defer running.Unlock()
	apps := running.apps[a.vault.path]
	if !slices.Contains(apps, a) || apps[len(apps)-1] == a {
		return nil
	}
	return apps[len(apps)-1]
}

// stopRunning counts a as stopped.
func (a *App) stopRunning() {
	running.Lock()
	defer running.Unlock()
	apps := running.apps[a.vault.path]
	if i := slices.Index(apps, a); i >= 0 {
		running.apps[a.vault.path] = slices.Delete(apps, i, i+1)
	}
}

// alone reports whether a is the only running App on its store in this
// process.
func (a *App) alone() bool {
	running.Lock()
	defer running.Unlock()
	return slices.Equal(running.apps[a.vault.path], []*App{a})
}

// StorageConfig is where mcpgate keeps its records.
type StorageConfig struct {
	// Backend is "badger" (default), an embedded database for one
	// instance, or "postgres", a PostgreSQL database that several
	// instances share. A shared backend needs seal_keys: every instance
	// must seal with the same keys, which never live in the database.
	Backend string `json:"backend,omitempty"`

	// Path is the Badger database directory. Default: Caddy's data
	// directory + "/mcpgate".
	Path string `json:"path,omitempty"`

	// DSN is the PostgreSQL connection string, for backend "postgres",
	// such as postgres://mcpgate@db.internal:5432/mcpgate. Best given as
	// a placeholder such as {env.MCPGATE_PG_DSN}: it may hold a password.
	// Required for postgres.
	DSN string `json:"dsn,omitempty"`
}

// Interface guards
var (
	_ caddy.Module       = (*App)(nil)
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
