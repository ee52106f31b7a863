package mcpmux

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// errUpstreamTimedOut ends a request whose upstream kept the gateway
// waiting longer than its connector's timeout.
var errUpstreamTimedOut = errors.New("upstream timed out")

// waitBound ends one upstream request once the gateway has waited for the
// upstream longer than the connector's timeout. The time the upstream
// waits for the agent, while one of its questions is out, does not count:
// a person may take minutes to answer, and that is the upstream's wait,
// not the gateway's. Without a bound, an upstream that never answers (one
// that lost its own question, sent on a stream that was not yet attached)
// would hold a parked call, its goroutine and its agent for parkTTL.
type waitBound struct {
	timeout time.Duration
	mu      sync.Mutex
	timer   *time.Timer
	out     int // questions out to the agent
}

// boundWait returns ctx ended by the bound, ask made to pause the bound
// while it waits for the agent, and stop, which ends ctx once the request
// is over.
func boundWait(ctx context.Context, timeout time.Duration, ask askFunc) (context.Context, askFunc, context.CancelFunc) {
	if ask == nil {
		// No question can pause it: the standard library's deadline.
		ctx, cancel := context.WithTimeoutCause(ctx, timeout, errUpstreamTimedOut)
		return ctx, nil, cancel
	}
	ctx, cancel := context.WithCancelCause(ctx)
	b := &waitBound{timeout: timeout}
	b.timer = time.AfterFunc(timeout, func() { cancel(errUpstreamTimedOut) })
	stop := func() {
		b.timer.Stop()
		cancel(nil)
	}
	return ctx, b.asking(ctx, ask), stop
}

// asking wraps ask: the bound pauses while the agent is asked, and starts
// over once it has answered. The question ends with the request, ctx,
// whatever stream it came on, so that the upstream is answered, with an
// error, rather than left waiting for a call that is over: a question on
// the notification stream is otherwise bound to that stream alone.
func (b *waitBound) asking(ctx context.Context, ask askFunc) askFunc {
	if ask == nil {
		return nil
	}
	return func(qctx context.Context, method string, params []byte) (json.RawMessage, *rpcError) {
		b.pause()
		defer b.resume()
		qctx, cancel := context.WithCancel(qctx)
		defer cancel()
		defer context.AfterFunc(ctx, cancel)()
		return ask(qctx, method, params)
	}
}

// pause stops the bound while a question is out.
func (b *waitBound) pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out++; b.out == 1 {
		b.timer.Stop()
	}
}

// resume starts the bound over once no question is out.
func (b *waitBound) resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out--; b.out == 0 {
		b.timer.Reset(b.timeout)
	}
}
