package connectors

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// Storage is where a Registry keeps the connectors added at run time and
// the tool selections: a key-value store that seals what it holds, as
// store.Sealed does. The keys are the Registry's own.
type Storage interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// Where the Registry's records live in its Storage. Both are sealed like
// every record outside store.ClearPrefix: a runtime connector may hold a
// client secret, and the key ring rewraps them on a rotation.
const (
	runtimePrefix   = "runtime/connectors/"
	selectionPrefix = "tools/"
)

// ErrorKind sorts a Registry's errors by what the caller did wrong, so
// that an API can answer each with its status.
type ErrorKind int

// The kinds of Registry errors.
const (
	// KindInvalid: the request is malformed or the connector invalid.
	KindInvalid ErrorKind = iota + 1
	// KindNotFound: no such connector, or no selection.
	KindNotFound
	// KindConflict: the id is taken, or the connector is the config's.
	KindConflict
	// KindUpstream: the upstream's answer cannot be used.
	KindUpstream
	// KindStorage: the store failed.
	KindStorage
)

// Error is a Registry's error, of a kind.
type Error struct {
	Kind ErrorKind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errorf makes an Error of kind.
func errorf(kind ErrorKind, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// Entry is one connector of the registry, from the config or added at
// run time. Its Config is literal: placeholders are resolved before a
// config connector enters, and never resolved in a runtime one.
type Entry struct {
	// Config is the connector, as validated when it entered.
	Config Config `json:"config"`
	// Preset names the preset it took its client and metadata from.
	Preset string `json:"preset,omitempty"`
	// Title and Description describe it to people.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Created is when it was added; zero for the config's.
	Created time.Time `json:"created,omitzero"`
	// Updated is when an admin last changed it (Update), if ever.
	Updated time.Time `json:"updated,omitzero"`
	// Runtime tells a connector added at run time from the config's.
	Runtime bool `json:"-"`
}

// Snapshot is the registry at one moment. It never changes; a change
// makes a new one.
type Snapshot struct {
	// Generation counts the changes to what the gateway serves: a
	// connector added or removed, a selection made or approved, a grant
	// added or removed. Drift seen upstream changes no generation, since
	// the gateway has hidden the tool already.
	Generation uint64
	// Entries are the config's connectors in config order, then the
	// runtime ones in id order.
	Entries []Entry
	// Shadowed are runtime connectors kept in storage whose id the
	// config now defines: they are not served until an admin removes
	// them from storage or the config gives the id back.
	Shadowed []string
	// Grants are the config's grants in config order, then the runtime
	// ones oldest first.
	Grants     []Grant
	selections map[string]*Selection
}

// Entry returns connector id.
func (s *Snapshot) Entry(id string) (Entry, bool) {
	for _, e := range s.Entries {
		if e.Config.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Selection returns connector id's tool selection, or nil when it has
// none. The caller must not change it.
func (s *Snapshot) Selection(id string) *Selection { return s.selections[id] }

// Connector builds entry e's connector, with its selection in force.
func (s *Snapshot) Connector(e Entry) (*Connector, error) {
	c, err := e.Config.Build()
	if err != nil {
		return nil, err
	}
	if sel := s.selections[e.Config.ID]; sel != nil {
		c = sel.apply(c)
	}
	c.Title, c.Description = e.Title, e.Description
	return c, nil
}

// Options configure a Registry.
type Options struct {
	// Config are the config's connectors, their placeholders resolved.
	Config []Config
	// Grants are the config's grants, kept as given: the gateway compiles
	// them with the runtime ones for each generation, so that a bad one
	// fails the config's first.
	Grants []grants.Rule
	// Presets are the config's presets, their placeholders resolved; they
	// extend and override the built-in Catalog.
	Presets []PresetConfig
	// NoBuiltinPresets leaves the built-in Catalog out: only the config's
	// presets are matched and shown.
	NoBuiltinPresets bool
	// Check makes the checks of a connector that other packages own,
	// such as its OAuth client's; nil checks nothing more. It runs on the
	// config's connectors here and on each runtime one as it is added.
	Check func(Config, *Connector) error
	// Poll is how often to check whether another instance sharing the
	// storage changed the registry, in case its notice was lost; zero
	// never checks. It matters only for a storage that counts changes
	// (store.Adder).
	Poll time.Duration
	// Errors is told of the failures of the work done in the background
	// to follow other instances, to re-pin and to record drift; nil
	// ignores them.
	Errors func(error)
	// Repinned is told of the tools of a connector whose pin, made by an
	// older version, was re-pinned to the current scope (title and
	// annotations too) since what it covered had not changed, so that the
	// change is audited; nil tells no one.
	Repinned func(connector string, tools []string)
	// DriftSeen is told of each drift recorded: a selected tool or
	// prompt listed with a definition not seen before, named with the
	// fields that changed, so that it is audited once however many list
	// fetches see it; nil tells no one. It runs in the background, never
	// under the registry's lock.
	DriftSeen func(DriftNotice)
}

// Registry holds the connectors in one id space, the config's and those
// added at run time, with the presets and the tool selections. It keeps
// its changes in a Storage and announces each one to the function Watch
// gives it, so that the gateway is rebuilt from one place. It is safe for
// concurrent use.
type Registry struct {
	config  []Entry
	grants  []Grant // the config's
	presets []preset
	check   func(Config, *Connector) error

	id      string        // names it in its notices to other instances
	grantID func() string // names a new runtime grant (grants.go)
	poll    time.Duration // how often to check the shared generation; 0: never
	errors  func(error)   // reports the background work's failures

	mu      sync.Mutex // serializes changes
	storage Storage
	watch   func(*Snapshot) error
	snap    atomic.Pointer[Snapshot]
	seen    atomic.Uint64 // the shared generation last seen (follow.go)
	stop    func()        // stops following the others; nil when not
	pins    pinQueue      // re-pins and drift records, in the background (repin.go)
}

// NewRegistry checks the config's connectors and presets. It reads no
// storage: Open does.
func NewRegistry(o Options) (*Registry, error) {
	r := &Registry{check: o.Check, id: newRegistryID(), grantID: randomGrantID, poll: o.Poll, errors: o.Errors, grants: configGrants(o.Grants)}
	r.pins.repinned, r.pins.driftSeen = o.Repinned, o.DriftSeen
	if r.check == nil {
		r.check = func(Config, *Connector) error { return nil }
	}
	seen := map[string]bool{}
	for i, cfg := range o.Config {
		if seen[cfg.ID] {
			return nil, fmt.Errorf("connectors[%d]: connector %q is defined twice", i, cfg.ID)
		}
		seen[cfg.ID] = true
		c, err := cfg.Build()
		if err != nil {
			return nil, err
		}
		if err := r.check(cfg, c); err != nil {
			return nil, err
		}
		r.config = append(r.config, Entry{Config: cfg})
	}
	var err error
	if r.presets, err = mergePresets(o.Presets, !o.NoBuiltinPresets); err != nil {
		return nil, err
	}
	for i := range r.config {
		r.describe(&r.config[i])
	}
	r.snap.Store(&Snapshot{Entries: r.config, Grants: r.grants, selections: map[string]*Selection{}})
	return r, nil
}

// Watch makes fn the one function told of every change, with the new
// snapshot, before the change is in force: an error from fn undoes the
// change and is the change's error. fn runs under the registry's lock.
func (r *Registry) Watch(fn func(*Snapshot) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watch = fn
}

// Snapshot returns the registry now.
func (r *Registry) Snapshot() *Snapshot { return r.snap.Load() }

// Open reads the runtime connectors and the selections from storage,
// announces them, and starts following the other instances that share
// the storage (follow.go). Close stops that.
func (r *Registry) Open(ctx context.Context, storage Storage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.storage = storage
	if err := r.reload(ctx); err != nil {
		return err
	}
	r.follow()
	return nil
}

// Reload reads storage again and announces what it holds, for a change
// made elsewhere.
func (r *Registry) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reload(ctx)
}

// reload reads the runtime connectors and the selections. The caller
// holds r.mu.
func (r *Registry) reload(ctx context.Context) error {
	runtime, err := readAll[Entry](ctx, r.storage, runtimePrefix, "runtime connector")
	if err != nil {
		return err
	}
	sels, err := readAll[Selection](ctx, r.storage, selectionPrefix, "tool selection")
	if err != nil {
		return err
	}
	granted, err := readGrants(ctx, r.storage)
	if err != nil {
		return err
	}
	next := r.change(true)
	next.Entries, next.selections = slices.Clone(r.config), map[string]*Selection{}
	next.Grants = slices.Concat(r.grants, granted)
	if err := r.applySwitches(ctx, next); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(runtime)) {
		if _, taken := next.Entry(id); taken {
			// The config took the id since an admin added it: the config
			// wins, so that a stored record can never stop Caddy starting.
			next.Shadowed = append(next.Shadowed, id)
			continue
		}
		e := runtime[id]
		e.Runtime = true
		next.Entries = append(next.Entries, e)
	}
	for id, sel := range sels {
		next.selections[id] = &sel
	}
	return r.publish(next)
}

// readAll reads every record under prefix, by the id after it.
func readAll[T any](ctx context.Context, s Storage, prefix, what string) (map[string]T, error) {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("reading the %ss: %v", what, err)
	}
	out := make(map[string]T, len(keys))
	for _, key := range keys {
		id := strings.TrimPrefix(key, prefix)
		raw, err := s.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s: %v", what, id, err)
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s %s is corrupt: %v", what, id, err)
		}
		out[id] = v
	}
	return out, nil
}

// publish announces next and puts it in force. The caller holds r.mu.
func (r *Registry) publish(next *Snapshot) error {
	if r.watch != nil {
		if err := r.watch(next); err != nil {
			return err
		}
	}
	r.snap.Store(next)
	return nil
}

// change makes the next snapshot from the current one, of the next
// generation if it changes what the gateway serves: the caller changes
// its copy of the entries or selections.
func (r *Registry) change(serves bool) *Snapshot {
	cur := r.Snapshot()
	next := &Snapshot{Generation: cur.Generation, Entries: slices.Clone(cur.Entries), Grants: slices.Clone(cur.Grants), selections: maps.Clone(cur.selections)}
	if serves {
		next.Generation++
	}
	return next
}

// put stores v under key.
func (r *Registry) put(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.storage.Put(ctx, key, raw, 0)
}

// remove deletes key; a key already gone is no error.
func (r *Registry) remove(ctx context.Context, key string) error {
	if err := r.storage.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// opened fails when there is no storage to keep a change in yet.
func (r *Registry) opened() error {
	if r.storage == nil {
		return errorf(KindStorage, "the store is not open yet")
	}
	return nil
}

// AddRequest is a connector to add at run time, taken literally (no
// placeholders).
type AddRequest struct {
	Config
	// MatchPreset, true by default, lets a URL that matches a preset take
	// its OAuth client, title and description, unless the request gives
	// its own.
	MatchPreset *bool  `json:"match_preset,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

// Add checks a connector as the config's are checked, keeps it, and
// announces it.
func (r *Registry) Add(ctx context.Context, req AddRequest) (Entry, error) {
	if err := ValidateID(req.ID); err != nil {
		return Entry{}, &Error{KindInvalid, err}
	}
	cfg, err := req.Config.Expanded(Literal)
	if err != nil {
		return Entry{}, &Error{KindInvalid, err}
	}
	e := Entry{Config: cfg, Title: cmp.Or(req.Title, cfg.Title), Description: cmp.Or(req.Description, cfg.Description), Created: time.Now().UTC(), Runtime: true}
	e.Config.Title, e.Config.Description = "", "" // the entry's own, as stored
	if req.MatchPreset == nil || *req.MatchPreset {
		if p, ok := r.matchPreset(req.URL); ok {
			p.applyTo(&e)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.opened(); err != nil {
		return Entry{}, err
	}
	if old, exists := r.Snapshot().Entry(req.ID); exists {
		if old.Runtime {
			return Entry{}, errorf(KindConflict, "connector %q already exists; remove it first to replace it", req.ID)
		}
		return Entry{}, errorf(KindConflict, "connector %q is defined in the config, which the admin API cannot change", req.ID)
	}
	c, err := e.Config.Build()
	if err == nil {
		err = r.check(e.Config, c)
	}
	if err != nil {
		return Entry{}, &Error{KindInvalid, err}
	}
	// Create-only: another instance on a shared store may be adding the
	// same id at this moment, and neither may overwrite the other's.
	key := runtimePrefix + e.Config.ID
	raw, err := json.Marshal(e)
	if err != nil {
		return Entry{}, errorf(KindStorage, "storing connector %s: %v", e.Config.ID, err)
	}
	switch created, err := create(ctx, r.storage, key, raw); {
	case err != nil:
		return Entry{}, errorf(KindStorage, "storing connector %s: %v", e.Config.ID, err)
	case !created:
		return Entry{}, errorf(KindConflict, "connector %q already exists: another instance just added it", req.ID)
	}
	next := r.change(true)
	next.Entries = append(next.Entries, e)
	slices.SortStableFunc(next.Entries[len(r.config):], func(a, b Entry) int { return strings.Compare(a.Config.ID, b.Config.ID) })
	if err := r.publish(next); err != nil {
		_ = r.remove(ctx, key)
		return Entry{}, &Error{KindInvalid, err}
	}
	r.tell(ctx)
	return e, nil
}

// Remove forgets runtime connector id and its selection, and announces
// it. prepare, run first under the registry's lock, does what must happen
// before, such as revoking the connector's tokens; its error stops the
// removal.
func (r *Registry) Remove(ctx context.Context, id string, prepare func(Entry) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.opened(); err != nil {
		return err
	}
	e, ok := r.Snapshot().Entry(id)
	switch {
	case !ok:
		return errorf(KindNotFound, "no connector %q", id)
	case !e.Runtime:
		return errorf(KindConflict, "connector %q is defined in the config, which the admin API cannot change", id)
	}
	if err := prepare(e); err != nil {
		return err
	}
	// The selection goes first: left behind, it would bind a connector
	// added later under the same id to this one's pins.
	if err := r.remove(ctx, selectionPrefix+id); err != nil {
		return errorf(KindStorage, "removing the tool selection of %s: %v", id, err)
	}
	if err := r.remove(ctx, runtimePrefix+id); err != nil {
		return errorf(KindStorage, "removing connector %s: %v", id, err)
	}
	next := r.change(true)
	next.Entries = slices.DeleteFunc(next.Entries, func(e Entry) bool { return e.Config.ID == id })
	delete(next.selections, id)
	if err := r.publish(next); err != nil {
		r.restore(ctx, id)
		return err
	}
	r.tell(ctx)
	return nil
}

// Select makes connector id's selection from the tools its upstream
// lists now, pinning each definition; only those tools then enter the
// catalog.
func (r *Registry) Select(ctx context.Context, id string, listed []json.RawMessage, want []Want) (*Selection, error) {
	return r.SelectItems(ctx, id, SelectionRequest{Tools: want, ListedTools: listed})
}

// SelectItems makes connector id's selection of tools and, when q has
// a prompt part, prompts, from what its upstream lists now, pinning each
// definition; only those items then enter the catalog.
func (r *Registry) SelectItems(ctx context.Context, id string, q SelectionRequest) (*Selection, error) {
	if err := q.Validate(); err != nil {
		return nil, &Error{KindInvalid, err}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.connector(id)
	if err != nil {
		return nil, err
	}
	sel, err := newSelection(c, q, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	return sel, r.putSelection(ctx, id, sel, true)
}

// Approve pins each drifted tool named, or every drifted tool and prompt
// when names is empty, to its new definition, which returns it to the
// catalog. It returns the selection and the tool names approved, sorted.
func (r *Registry) Approve(ctx context.Context, id string, names []string) (*Selection, []string, error) {
	sel, done, err := r.ApproveItems(ctx, id, Approval{Tools: names})
	return sel, done.Tools, err
}

// Approval names drifted items of a selection to approve; empty names
// every drifted tool and prompt.
type Approval struct {
	Tools   []string `json:"tools,omitempty"`
	Prompts []string `json:"prompts,omitempty"`
}

// ApproveItems pins each drifted tool and prompt that a names to its new
// definition, which returns it to the catalog. It returns the selection
// and what it approved, each list sorted.
func (r *Registry) ApproveItems(ctx context.Context, id string, a Approval) (*Selection, Approval, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.connector(id); err != nil {
		return nil, Approval{}, err
	}
	cur := r.Snapshot().Selection(id)
	if cur == nil {
		return nil, Approval{}, errorf(KindNotFound, "connector %s has no tool selection", id)
	}
	if len(a.Tools) == 0 && len(a.Prompts) == 0 {
		a = Approval{Tools: cur.Drifted(), Prompts: cur.DriftedPrompts()}
	}
	// A name given twice is approved once.
	a.Tools = slices.Compact(slices.Sorted(slices.Values(a.Tools)))
	a.Prompts = slices.Compact(slices.Sorted(slices.Values(a.Prompts)))
	sel := cur.clone()
	for _, name := range a.Tools {
		t, ok := sel.Tools[name]
		if !ok || t.Drift == nil {
			return nil, Approval{}, errorf(KindInvalid, "tool %s of %s has not drifted", name, id)
		}
		t.Definition, t.Pin, t.Drift, t.DriftSeen = *t.Drift, t.Drift.Hash(), nil, time.Time{}
		sel.Tools[name] = t
	}
	for _, name := range a.Prompts {
		p, ok := sel.Prompts[name]
		if !ok || p.Drift == nil {
			return nil, Approval{}, errorf(KindInvalid, "prompt %s of %s has not drifted", name, id)
		}
		p.Definition, p.Pin, p.Drift, p.DriftSeen = *p.Drift, p.Drift.Hash(), nil, time.Time{}
		sel.Prompts[name] = p
	}
	sel.Updated = time.Now().UTC()
	return sel, a, r.putSelection(ctx, id, sel, true)
}

// Drifted records that selected tool of connector id changed upstream
// into raw, so that admins see what changed, and tells Options.DriftSeen.
// It reports whether this change is news. The gateway has already hidden
// the tool, so nothing is announced. A tool whose older version's pin
// still matches is not drift: it is queued to be re-pinned to the current
// scope (repin). It waits for the registry's lock: the gateway, which
// calls while fetching a list, uses QueueDrift instead.
func (r *Registry) Drifted(ctx context.Context, id, tool string, raw json.RawMessage) (bool, error) {
	def, err := DefinitionOf(raw)
	if err != nil {
		return false, nil // a definition that does not parse stays hidden, as drift would
	}
	if t, ok := r.Snapshot().Selection(id).tool(tool); ok && def.state(t.Pin) == PinOlder {
		r.queueRepin(id, tool, def)
		return false, nil
	}
	notes, err := r.recordDrifts(ctx, id, map[string]ToolDefinition{tool: def}, nil)
	r.tellDrifts(notes)
	return len(notes) > 0, err
}

// PromptDrifted records that selected prompt of connector id changed
// upstream into raw, as Drifted does for a tool.
func (r *Registry) PromptDrifted(ctx context.Context, id, prompt string, raw json.RawMessage) (bool, error) {
	def, err := PromptDefinitionOf(raw)
	if err != nil {
		return false, nil // a definition that does not parse stays hidden, as drift would
	}
	notes, err := r.recordDrifts(ctx, id, nil, map[string]PromptDefinition{prompt: def})
	r.tellDrifts(notes)
	return len(notes) > 0, err
}

// connector builds connector id as the registry holds it now. The caller
// holds r.mu.
func (r *Registry) connector(id string) (*Connector, error) {
	if err := r.opened(); err != nil {
		return nil, err
	}
	snap := r.Snapshot()
	e, ok := snap.Entry(id)
	if !ok {
		return nil, errorf(KindNotFound, "no connector %q", id)
	}
	c, err := e.Config.Build()
	if err != nil {
		return nil, &Error{KindInvalid, err}
	}
	return c, nil
}

// putSelection keeps connector id's selection and puts it in force,
// announced when it changes what the gateway serves. The caller holds
// r.mu.
func (r *Registry) putSelection(ctx context.Context, id string, sel *Selection, announce bool) error {
	if err := r.put(ctx, selectionPrefix+id, sel); err != nil {
		return errorf(KindStorage, "storing the tool selection of %s: %v", id, err)
	}
	next := r.change(announce)
	next.selections[id] = sel
	if !announce {
		r.snap.Store(next)
		r.tell(ctx) // drift: the others show it too
		return nil
	}
	if err := r.publish(next); err != nil {
		r.restore(ctx, id)
		return err
	}
	r.tell(ctx)
	return nil
}

// restore puts connector id's records back in storage as the snapshot in
// force holds them, after the watcher refused a change to them: what is
// stored is what the next Open puts in force, so a refused change must not
// stay there. It is best effort, as the refusal is the error to report.
// The caller holds r.mu.
func (r *Registry) restore(ctx context.Context, id string) {
	snap := r.Snapshot()
	if e, ok := snap.Entry(id); ok && e.Runtime {
		_ = r.put(ctx, runtimePrefix+id, e)
	}
	if sel := snap.Selection(id); sel != nil {
		_ = r.put(ctx, selectionPrefix+id, sel)
	} else {
		_ = r.remove(ctx, selectionPrefix+id)
	}
}

// SealPlainSelections seals the tool selections that earlier versions
// wrote in the clear, reading them from raw (the store itself) and
// writing them through sealed. A plain one is a JSON object, and no
// sealed record starts with '{' (its first byte is the format version),
// so a record is sealed at most once. Left plain, such a record stopped
// every rotation's rewrap ("unknown version 123").
func SealPlainSelections(ctx context.Context, raw, sealed Storage) (int, error) {
	keys, err := raw.List(ctx, selectionPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range keys {
		v, err := raw.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if len(v) == 0 || v[0] != '{' || !json.Valid(v) {
			continue
		}
		if err := sealed.Put(ctx, key, v, 0); err != nil {
			return n, fmt.Errorf("sealing the tool selection %s: %v", strings.TrimPrefix(key, selectionPrefix), err)
		}
		n++
	}
	return n, nil
}
