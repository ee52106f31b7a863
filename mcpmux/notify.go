package mcpmux

import (
	"slices"
	"sync"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Agents hear that their lists changed through list_changed notices on
// their open streams (streams.go). Besides an upstream's own list_changed
// (changes.go), what a caller may use changes when the gateway does: a
// new generation of it (a config reload, a runtime connector or grant),
// or a consent given or withdrawn. So that a stream hears of a change
// whichever generation makes it, the streams live in Streams, which
// outlives any one Mux; and so that a burst of changes never storms an
// agent, each stream gathers what it is told for a moment and sends each
// list's notice once.

// coalesce is how long a stream waits, after a first notice, before it
// sends what it was told meanwhile: the several announcements of one
// change (a registry change that also disconnects a grant, two
// generations that both hear an upstream) reach the agent as one
// notification per list.
const coalesce = 100 * time.Millisecond

// noticeKinds are the lists that have a list_changed notification of
// their own, in the order a stream sends them.
var noticeKinds = []*listKind{toolsKind, promptsKind, resourcesKind}

// Streams holds agents' open notification streams: legacy GET streams
// and 2026-07-28 subscriptions/listen. Like Sessions, one Streams may
// serve several Muxes in turn: a stream opened on one stays open when a
// reload or a registry change replaces that Mux, and hears what every
// later one announces. NewStreams makes one; Close ends its streams.
type Streams struct {
	listeners
	// subs are the resource subscriptions of legacy sessions, which
	// outlive the Mux that made them as the sessions do; muxes are the
	// open Muxes that may hold them (handover.go).
	subs    subscriptions
	muxes   muxes
	done    chan struct{} // closed by Close
	closing sync.Once
}

// NewStreams returns an empty set of streams.
func NewStreams() *Streams { return &Streams{done: make(chan struct{})} }

// Close ends every open stream, and every one opened after.
func (s *Streams) Close() { s.closing.Do(func() { close(s.done) }) }

// Changed tells every open stream that every list it listens for may
// have changed: for a change of the whole gateway, such as a config
// reload, after which working out each agent's view is not worth it.
func (s *Streams) Changed() {
	s.each(func(l *listener) { l.tell(noticeKinds...) })
}

// Reloaded tells every agent listening that its lists may have changed,
// because this Mux now serves in place of another: its connectors,
// grants or credentials may differ from those the agent listed with.
// Each stream hears of it once per list it listens for. From now on m
// holds the legacy sessions' resource subscriptions, which the Mux it
// replaces held, so that m's grants judge every update (handover.go).
func (m *Mux) Reloaded() {
	m.streams.Changed()
	m.background(m.adopt)
}

// AccessChanged tells the agents listening whose caller who selects, and
// who may use something of connector, that their lists of it may have
// changed: a consent completed, or a grant was disconnected, so that the
// connector's items appear or vanish for them. A listener at another
// connector's endpoint, or whose grants show it nothing of connector,
// hears nothing: the change is not in its view. An unknown connector, or
// one that is only an HTTP API, has no lists to change.
func (m *Mux) AccessChanged(connector string, who func(caller string) bool) {
	if !m.speaksMCP(connector) {
		return
	}
	// Collected first, so that the grant decisions run without the
	// streams' lock.
	var ls []*listener
	m.streams.each(func(l *listener) {
		if (l.scope == "" || l.scope == connector) && who(l.caller.ID) {
			ls = append(ls, l)
		}
	})
	for _, l := range ls {
		if sees(m.view(l.caller), connector) {
			l.tell(noticeKinds...)
		}
	}
}

// sees reports whether view may use anything of connector.
func sees(view *grants.View, connector string) bool {
	return view.Visible(connector) && view.HasItems(connector)
}

// tell notes that each of kinds may have changed, for those the agent
// listens for, and wakes the stream if it had nothing to send: the
// stream sends what it was told coalesce later (see flush). It never
// blocks, however slowly the agent reads.
func (l *listener) tell(kinds ...*listKind) {
	l.mu.Lock()
	idle := len(l.pending) == 0
	for _, k := range kinds {
		if k = k.notice(); l.kinds[k] && !slices.Contains(l.pending, k) {
			l.pending = append(l.pending, k)
		}
	}
	wake := idle && len(l.pending) > 0
	l.mu.Unlock()
	if wake {
		select {
		case l.wake <- struct{}{}:
		default: // a wake is already waiting
		}
	}
}

// take returns the notices the stream owes, in the order their lists
// were first told of, and owes none after.
func (l *listener) take() [][]byte {
	l.mu.Lock()
	kinds := l.pending
	l.pending = nil
	l.mu.Unlock()
	out := make([][]byte, len(kinds))
	for i, k := range kinds {
		out[i] = l.event(k)
	}
	return out
}
