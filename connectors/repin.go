package connectors

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// pinQueue holds the pin work that the gateway hands the registry while
// it fetches a list: re-pins of older pins, and drift to record. The work
// is done in the background, a connector at a time, and never on the
// caller's path, since the registry's lock may be held by a change whose
// rebuild closes the gateway, and that close waits for the very fetch
// that handed the work over.
type pinQueue struct {
	mu      sync.Mutex
	queued  map[string]*pinWork // by connector
	running bool
	closed  bool
	done    sync.WaitGroup
	// repinned is told of each connector's tools re-pinned, and
	// driftSeen of each drift recorded, for the audit.
	repinned  func(connector string, tools []string)
	driftSeen func(DriftNotice)
}

// pinWork is the work queued for one connector: each map by item name,
// its latest definition winning.
type pinWork struct {
	repins  map[string]ToolDefinition // tools whose older pin matches
	tools   map[string]ToolDefinition // tools that drifted
	prompts map[string]PromptDefinition
}

// queueRepin queues tool of connector id, listed as def, for a re-pin.
// It never waits for the registry's lock: the gateway calls it while
// fetching a list, and the rebuild that a re-pin makes waits for that
// fetch to end.
func (r *Registry) queueRepin(id, tool string, def ToolDefinition) {
	r.enqueue(id, func(w *pinWork) { put(&w.repins, tool, def) })
}

// enqueue adds to connector id's queued work with add, and starts the
// work unless it runs. It takes only the queue's own lock.
func (r *Registry) enqueue(id string, add func(*pinWork)) {
	q := &r.pins
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.queued == nil {
		q.queued = map[string]*pinWork{}
	}
	if q.queued[id] == nil {
		q.queued[id] = &pinWork{}
	}
	add(q.queued[id])
	if q.running {
		return
	}
	q.running = true
	q.done.Add(1)
	go r.work()
}

// put sets (*m)[k] to v, making the map when nil.
func put[V any](m *map[string]V, k string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[k] = v
}

// work does what is queued, a connector at a time, until the queue is
// empty: the items of one list, queued together, make one change.
func (r *Registry) work() {
	q := &r.pins
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
			w := batch[id]
			if names := r.repin(id, w.repins); len(names) > 0 && q.repinned != nil {
				q.repinned(id, names)
			}
			if len(w.tools) > 0 || len(w.prompts) > 0 {
				r.recordQueued(id, w)
			}
		}
	}
}

// recordQueued records the drift queued in w for connector id, and tells
// of what is news.
func (r *Registry) recordQueued(id string, w *pinWork) {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	notes, err := r.recordDrifts(ctx, id, w.tools, w.prompts)
	if err != nil {
		r.failed(err)
	}
	r.tellDrifts(notes)
}

// repin pins each tool of defs to its listed definition, in the current
// scope, if its pin is still an older version's that the definition
// matches, and announces the change: the gateway then holds the tool to
// its title and annotations too. It returns the tools re-pinned.
func (r *Registry) repin(id string, defs map[string]ToolDefinition) []string {
	if len(defs) == 0 {
		return nil
	}
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

// closeQueue stops queueing pin work and waits for the work under way.
func (r *Registry) closeQueue() {
	r.pins.mu.Lock()
	r.pins.closed = true
	r.pins.mu.Unlock()
	r.pins.done.Wait()
}
