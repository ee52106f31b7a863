package mcpmux

import (
	"context"
	"sync/atomic"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// HoldListener holds back the notification stream that the first connect
// to c, with static credentials, starts on m, until start is called: as a
// loaded machine may run its goroutine late, once the request that
// connected has gone on to its next step. Later streams start as usual.
// It must be called before m serves c.
func HoldListener(m *Mux, c *connectors.Connector) (start func()) {
	u := m.upstreamFor(c, "static")
	run := u.background
	held := make(chan func(context.Context), 1)
	var taken atomic.Bool
	u.background = func(f func(context.Context)) bool {
		if !taken.CompareAndSwap(false, true) {
			return run(f)
		}
		held <- f
		return true
	}
	return func() { run(<-held) }
}
