package connectors

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// repinner re-pins, in the background, the tools whose pin an older
// version made (over description and schemas only) to the current scope,
// once the upstream is seen to list what that pin covered unchanged: an
// upgrade must not turn every pinned tool into drift, nor leave the
// older, narrower pins in force.
type repinner struct {
	mu      sync.Mutex
	queued  map[string]map[string]ToolDefinition // by connector, then tool
	running bool
	closed  bool
	done    sync.WaitGroup
	// told is told of each connector's tools re-pinned, for the audit.
	told func(connector string, tools []string)
}

// queueRepin queues tool of connector id, listed as def, for a re-pin,
// and starts the work unless it runs. It never waits for the registry's
// lock: the gateway calls it while fetching a list, and the rebuild that
// a re-pin makes waits for that fetch to end.
func (r *Registry) queueRepin(id, tool string, def ToolDefinition) {
	q := &r.repins
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.queued == nil {
		q.queued = map[string]map[string]ToolDefinition{}
	}
	if q.queued[id] == nil {
		q.queued[id] = map[string]ToolDefinition{}
	}
	q.queued[id][tool] = def
	if q.running {
		return
	}
	q.running = true
	q.done.Add(1)
	go r.repinQueued()
}

// repinQueued re-pins what is queued, a connector at a time, until the
// queue is empty: the tools of one list, queued together, make one change.
func (r *Registry) repinQueued() {
	q := &r.repins
	defer q.done.Done()
	for {
		q.mu.Lock()
		batch := q.queued
		q.queued = nil
		if len(batch) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for _, id := range slices.Sorted(maps.Keys(batch)) {
			if names := r.repin(id, batch[id]); len(names) > 0 && q.told != nil {
				q.told(id, names)
			}
		}
	}
}

// repin pins each tool of defs to its listed definition, in the current
// scope, if its pin is still an older version's that the definition
// matches, and announces the change: the gateway then holds the tool to
// its title and annotations too. It returns the tools re-pinned.
func (r *Registry) repin(id string, defs map[string]ToolDefinition) []string {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.Snapshot().Selection(id)
	if cur == nil || r.opened() != nil {
		return nil
	}
	sel := cur.clone()
	var names []string
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		t, ok := sel.Tools[name]
		def := defs[name]
		if !ok || def.state(t.Pin) != PinOlder {
			continue // approved, drifted or removed meanwhile
		}
		// What the older pin covered is listed unchanged: any drift
		// recorded against it is gone.
		t.Definition, t.Pin, t.Drift, t.DriftSeen = def, def.Hash(), nil, time.Time{}
		sel.Tools[name] = t
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil
	}
	if err := r.putSelection(ctx, id, sel, true); err != nil {
		r.failed(err)
		return nil
	}
	return names
}

// closeRepins stops queueing re-pins and waits for the work under way.
func (r *Registry) closeRepins() {
	r.repins.mu.Lock()
	r.repins.closed = true
	r.repins.mu.Unlock()
	r.repins.done.Wait()
}
