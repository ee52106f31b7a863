package connectors

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// DriftNotice tells of a drift first seen: a pinned tool or prompt that
// its upstream lists with a definition not seen before, which the gateway
// hides until an admin approves it. It names the fields that changed and
// never their values, which the upstream chooses and may make large.
type DriftNotice struct {
	// Connector is the connector's id, Kind what drifted and Name its
	// upstream name.
	Connector string
	Kind      PinKind
	Name      string
	// Fields are the names of the fields that changed against the
	// approved definition, sorted, as the selection's view names them
	// ("description", "annotations.readOnlyHint", ...).
	Fields []string
}

// QueueDrift hands over item name of connector id, of kind, that the
// gateway saw listed as raw, unlike its pin: a tool whose older version's
// pin still matches is queued to be re-pinned, and drift to be recorded
// and told (Options.DriftSeen), in the background. It never waits for
// the registry's lock, and the gateway hides a drifted item whether or
// not this is recorded yet.
//
// Queued rather than recorded here because the gateway calls it while
// fetching a list, and a change that holds the registry's lock (an
// admin's approval) rebuilds the gateway and closes the old one, which
// waits for that fetch: recording here would wait for the lock, and
// neither would end. Letting go of the lock across the rebuild instead
// would let an older snapshot's gateway replace a newer one, which the
// lock is there to prevent.
func (r *Registry) QueueDrift(kind PinKind, id, name string, raw json.RawMessage) {
	sel := r.Snapshot().Selection(id)
	switch kind {
	case ToolPin:
		def, err := DefinitionOf(raw)
		if err != nil {
			return // a definition that does not parse stays hidden, as drift would
		}
		t, ok := sel.tool(name)
		switch {
		case !ok:
		case def.state(t.Pin) == PinOlder:
			r.queueRepin(id, name, def)
		case t.Drift == nil || t.Drift.Hash() != def.Hash():
			// Each fetch tells of the drift again: one that is recorded
			// already is no work.
			r.enqueue(id, func(w *pinWork) { put(&w.tools, name, def) })
		}
	case PromptPin:
		def, err := PromptDefinitionOf(raw)
		if err != nil {
			return
		}
		if p, ok := sel.prompt(name); ok && (p.Drift == nil || p.Drift.Hash() != def.Hash()) {
			r.enqueue(id, func(w *pinWork) { put(&w.prompts, name, def) })
		}
	}
}

// recordDrifts records that the selected tools and prompts of connector
// id changed upstream into the definitions given, so that admins see
// what changed, in one change of the selection. It returns a notice of
// each drift that is news: an item whose drift is recorded with the same
// definition already is not. The gateway has already hidden them, so
// nothing is announced.
func (r *Registry) recordDrifts(ctx context.Context, id string, tools map[string]ToolDefinition, prompts map[string]PromptDefinition) ([]DriftNotice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.Snapshot().Selection(id)
	if cur == nil || r.storage == nil {
		return nil, nil
	}
	sel, now := cur.clone(), time.Now().UTC()
	var notes []DriftNotice
	for _, name := range slices.Sorted(maps.Keys(tools)) {
		t, ok := sel.Tools[name]
		def := tools[name]
		if !ok || def.state(t.Pin) != PinChanged || (t.Drift != nil && t.Drift.Hash() == def.Hash()) {
			continue
		}
		t.Drift, t.DriftSeen = &def, now
		sel.Tools[name] = t
		changed := diffTool(t.Definition, def, !strings.HasPrefix(t.Pin, pinVersion))
		notes = append(notes, DriftNotice{id, ToolPin, name, slices.Sorted(maps.Keys(changed))})
	}
	for _, name := range slices.Sorted(maps.Keys(prompts)) {
		p, ok := sel.Prompts[name]
		def := prompts[name]
		if !ok || def.Hash() == p.Pin || (p.Drift != nil && p.Drift.Hash() == def.Hash()) {
			continue
		}
		p.Drift, p.DriftSeen = &def, now
		sel.Prompts[name] = p
		notes = append(notes, DriftNotice{id, PromptPin, name, slices.Sorted(maps.Keys(diffPrompt(p.Definition, def)))})
	}
	if len(notes) == 0 {
		return nil, nil
	}
	if err := r.putSelection(ctx, id, sel, false); err != nil {
		return nil, err
	}
	return notes, nil
}

// tellDrifts tells Options.DriftSeen of each drift recorded. The caller
// does not hold r.mu.
func (r *Registry) tellDrifts(notes []DriftNotice) {
	if r.pins.driftSeen == nil {
		return
	}
	for _, n := range notes {
		r.pins.driftSeen(n)
	}
}
