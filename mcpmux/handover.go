package mcpmux

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A reload replaces the Mux that serves agents with another on the same
// Sessions and Streams (Options). The sessions and their streams stay
// open, and so do their resource subscriptions, which live in the
// Streams: the agent subscribed once, and no client subscribes again on
// a stream that did not end. A subscription is held at an upstream
// connection of one Mux, though, which closes with it. So the Mux that
// serves in its place takes it over, subscribing at its own upstream with
// its own grants judging, as a resources/subscribe to it would be judged:
// when it is told that it serves (Reloaded), and when the Mux that holds
// one closes. One that the new grants refuse, or whose upstream fails,
// ends: the agent hears no more updates of it, as when an upstream drops
// a subscription.

// takeOverTimeout bounds the move of one subscription, which may fetch
// lists to route its URI and ask the upstream to subscribe.
const takeOverTimeout = 30 * time.Second

// muxes are the open Muxes of one Streams, in the order they were made:
// the newest serves, or is about to, and takes over what the others hold.
type muxes struct {
	mu  sync.Mutex
	all []*Mux
}

// join adds m, the newest.
func (ms *muxes) join(m *Mux) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.all = append(ms.all, m)
}

// leave removes m, and returns the newest Mux left, or nil.
func (ms *muxes) leave(m *Mux) *Mux {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for i, o := range ms.all {
		if o == m {
			ms.all = append(ms.all[:i], ms.all[i+1:]...)
			break
		}
	}
	if len(ms.all) == 0 {
		return nil
	}
	return ms.all[len(ms.all)-1]
}

// handOver has the newest Mux left on m's Streams take over the
// subscriptions m holds, as m closes: after m's closed is closed, so that
// none is added to m once the heir lists them. With no Mux left, the
// Streams is closing with the last config, and they end with it.
func (m *Mux) handOver() {
	if heir := m.streams.muxes.leave(m); heir != nil {
		heir.background(heir.adopt)
	}
}

// adopt takes over every subscription that another Mux holds, and
// watches the end of each session it took one from.
func (m *Mux) adopt(ctx context.Context) {
	watched := map[*session]bool{}
	for _, old := range m.subs.others(m) {
		if m.takeOver(ctx, old) && !watched[old.session] {
			watched[old.session] = true
			m.watchSession(old.session)
		}
	}
}

// takeOver subscribes old's session to old's resource at m's upstream, in
// old's place, and reports whether m holds it now. Either way, old's Mux
// lets go of it, and of its own upstream's subscription.
func (m *Mux) takeOver(ctx context.Context, old *subscription) bool {
	ctx, cancel := context.WithTimeout(ctx, takeOverTimeout)
	defer cancel()
	ss := old.session
	x := &exchange{ctx: ctx, caller: ss.caller, view: m.view(ss.caller), scope: ss.scope, session: ss, method: "resources/subscribe"}
	rep := m.hold(x, old.agentURI, old)
	if rep.err != nil {
		if ce := m.logger.Check(zapcore.DebugLevel, "a resource subscription ended as the gateway changed"); ce != nil {
			ce.Write(zap.String("connector", old.conn.ID), zap.ByteString("reason", member(rep.err, "message")))
		}
	}
	old.mux.background(func(ctx context.Context) { old.mux.release(ctx, ss.caller, old) })
	return rep.err == nil
}
