package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrInvalidNotice means a notice's channel or payload cannot be sent.
var ErrInvalidNotice = errors.New("store: invalid notice")

// The bounds of a notice, those of PostgreSQL's NOTIFY: a channel is an
// identifier (NAMEDATALEN-1 bytes), and a payload is less than 8000 bytes,
// less here so that a backend may carry the channel's name beside it.
const (
	maxChannel = 63
	maxPayload = 7900
)

// CheckNotice returns an error wrapping ErrInvalidNotice unless channel
// is 1 to 63 printable ASCII characters without spaces and payload is at
// most 7900 bytes of UTF-8 without NUL. Every backend checks notices with
// it, so that a notice sent in tests can be sent through PostgreSQL.
func CheckNotice(channel, payload string) error {
	switch {
	case channel == "" || len(channel) > maxChannel:
		return fmt.Errorf("%w: the channel has %d bytes, not 1 to %d", ErrInvalidNotice, len(channel), maxChannel)
	case strings.IndexFunc(channel, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		return fmt.Errorf("%w: the channel %q has a character other than printable ASCII", ErrInvalidNotice, channel)
	case len(payload) > maxPayload:
		return fmt.Errorf("%w: the payload has %d bytes, more than %d", ErrInvalidNotice, len(payload), maxPayload)
	case !utf8.ValidString(payload) || strings.IndexByte(payload, 0) >= 0:
		return fmt.Errorf("%w: the payload is not UTF-8 text without NUL", ErrInvalidNotice)
	}
	return nil
}

// noticeQueue bounds the notices waiting for one subscriber. Notify never
// waits for a subscriber: fn may itself notify, and one slow subscriber
// must not hold up the others. Past the bound, notices to that subscriber
// are dropped, which the Notifier contract allows: subscribers re-read
// now and then.
const noticeQueue = 1024

// hub carries notices within one process. Memory and Badger each hold
// one, so every user of the same store instance hears the others. The
// zero hub is ready to use.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{} // by channel

	// running counts the delivering goroutines, so that a test can see
	// that none outlives its subscription.
	running sync.WaitGroup
}

// subscriber is one subscription: its queue of notices, delivered in
// order by one goroutine.
type subscriber struct {
	notices chan string
}

// notify queues payload for every subscriber of channel.
func (h *hub) notify(channel, payload string) error {
	if err := CheckNotice(channel, payload); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[channel] {
		select {
		case s.notices <- payload:
		default: // the subscriber is noticeQueue behind: drop
		}
	}
	return nil
}

// subscribe registers fn on channel before it returns, and delivers to
// it on a goroutine of its own until ctx ends.
func (h *hub) subscribe(ctx context.Context, channel string, fn func(string)) error {
	if err := CheckNotice(channel, ""); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: subscribing to %q: %w", channel, err)
	}
	s := &subscriber{notices: make(chan string, noticeQueue)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[string]map[*subscriber]struct{})
	}
	if h.subs[channel] == nil {
		h.subs[channel] = make(map[*subscriber]struct{})
	}
	h.subs[channel][s] = struct{}{}
	h.running.Add(1)
	h.mu.Unlock()
	go h.deliver(ctx, channel, s, fn)
	return nil
}

// deliver calls fn with s's notices in order until ctx ends, then drops
// s. It checks ctx before each call, so that no notice is delivered once
// the subscriber has cancelled.
func (h *hub) deliver(ctx context.Context, channel string, s *subscriber, fn func(string)) {
	defer h.running.Done()
	defer h.unsubscribe(channel, s)
	for {
		select {
		case <-ctx.Done():
			return
		case payload := <-s.notices:
			if ctx.Err() != nil {
				return
			}
			fn(payload)
		}
	}
}

func (h *hub) unsubscribe(channel string, s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[channel], s)
	if len(h.subs[channel]) == 0 {
		delete(h.subs, channel)
	}
}
