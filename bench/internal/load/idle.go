package load

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
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
// open and idle until Close. opts.Concurrency, Method and Era are ignored:
// only the legacy era has sessions to hold.
func HoldIdle(ctx context.Context, opts Options, n int) (*Idle, error) {
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
	}
	if err := h.each(func(s *session) error { return s.handshake(ctx) }); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Len returns the number of sessions held.
func (h *Idle) Len() int { return len(h.sessions) }

// each runs f on every session, openers at a time. It returns the first
// error and how many sessions failed, not a thousand copies of one error.
func (h *Idle) each(f func(*session) error) error {
	errs := make([]error, len(h.sessions))
	sem := make(chan struct{}, openers)
	var wg sync.WaitGroup
	for i, s := range h.sessions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(s)
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
	_ = h.each(func(s *session) error { s.close(ctx); return nil })
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
}
