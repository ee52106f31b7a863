package load

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// openers bounds how many sessions HoldIdle opens at once, so that opening
// a thousand does not become a burst that the server under test must queue.
const openers = 16

// Idle is a set of open legacy sessions that send nothing: what a server
// holds for agents that connected and went quiet.
type Idle struct {
	sessions []*session
	clients  []*http.Client
}

// HoldIdle opens n legacy sessions on opts.URL, each with the initialize
// handshake and on a keep-alive connection of its own, and leaves them
// open and idle until Close. With connected unset, each session's
// connection is closed as soon as its handshake is done: the server then
// holds the sessions alone, as it does for agents that went quiet and let
// their connections time out, and no more than a few connections are ever
// open at once. opts.Concurrency, Method and Era are ignored: only the
// legacy era has sessions to hold.
func HoldIdle(ctx context.Context, opts Options, n int, connected bool) (*Idle, error) {
	opts.Era = EraLegacy
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Idle{sessions: make([]*session, n), clients: make([]*http.Client, n)}
	for i := range n {
		// A transport each: sessions that share one would share its
		// connections, and the server would hold fewer than n.
		h.clients[i] = &http.Client{Transport: newTransport(1), Timeout: opts.Timeout}
		h.sessions[i] = newSession(h.clients[i], opts)
		if opts.CallerHeader != "" {
			h.sessions[i].header.Set(opts.CallerHeader, "agent-"+strconv.Itoa(i+1))
		}
	}
	err = h.each(func(i int, s *session) error {
		err := s.handshake(ctx)
		if !connected {
			h.clients[i].CloseIdleConnections()
		}
		return err
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Connect opens each session's connection again with a ping on it, and
// leaves it open and idle: what a server holds for quiet agents that keep
// their connections.
func (h *Idle) Connect(ctx context.Context) error {
	return h.each(func(_ int, s *session) error { return s.ping(ctx) })
}

// Len returns the number of sessions held.
func (h *Idle) Len() int { return len(h.sessions) }

// each runs f on every session, openers at a time. It returns the first
// error and how many sessions failed, not a thousand copies of one error.
func (h *Idle) each(f func(int, *session) error) error {
	errs := make([]error, len(h.sessions))
	sem := make(chan struct{}, openers)
	var wg sync.WaitGroup
	for i, s := range h.sessions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i, s)
		})
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d sessions failed, the first: %w", failed, len(errs), first)
}

// Close ends the sessions with DELETE, best effort, and closes their
// connections.
func (h *Idle) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = h.each(func(_ int, s *session) error { s.close(ctx); return nil })
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
}
