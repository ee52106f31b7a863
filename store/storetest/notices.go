package storetest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// quiet is how long a case listens for a notice that must not come,
// after one that was sent later has arrived elsewhere. A correct backend
// passes whatever it is; a short one only lets a faulty one through more
// often.
const quiet = 200 * time.Millisecond

// inbox collects the notices of one subscription.
type inbox chan string

// subscribe subscribes to channel on s until ctx ends, into an inbox.
// The inbox holds more notices than any case sends, so that the
// subscriber's fn never blocks.
func subscribe(ctx context.Context, t *testing.T, s store.Shared, channel string) inbox {
	t.Helper()
	in := make(inbox, 1000)
	must(t, s.Subscribe(ctx, channel, func(payload string) { in <- payload }))
	return in
}

// next waits for the inbox's next notice and checks it is want.
func (in inbox) next(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-in:
		if got != want {
			t.Fatalf("got the notice %q, want %q", got, want)
		}
	case <-time.After(deadline):
		t.Fatalf("the notice %q never came", want)
	}
}

// none checks that no notice came.
func (in inbox) none(t *testing.T, what string) {
	t.Helper()
	select {
	case got := <-in:
		t.Errorf("%s, yet got %q", what, got)
	case <-time.After(quiet):
	}
}

// testNoticeDelivered: a notice sent after Subscribe returns arrives,
// from the same store handle, with its payload intact.
func testNoticeDelivered(t *testing.T, s store.Shared) {
	in := subscribe(t.Context(), t, s, "st_delivered")
	for _, payload := range []string{"hello", "", "with space, \"quotes\" and 'apostrophes'; DROP TABLE x; é"} {
		must(t, s.Notify(t.Context(), "st_delivered", payload))
		in.next(t, payload)
	}
}

// testNoticeOrder: one subscription gets the notices in the order they
// were sent.
func testNoticeOrder(t *testing.T, s store.Shared) {
	in := subscribe(t.Context(), t, s, "st_order")
	const n = 100
	for i := range n {
		must(t, s.Notify(t.Context(), "st_order", strconv.Itoa(i)))
	}
	for i := range n {
		in.next(t, strconv.Itoa(i))
	}
}

// testNoticeFanOut: every subscriber of a channel gets its notices, and
// only those.
func testNoticeFanOut(t *testing.T, s store.Shared) {
	one := subscribe(t.Context(), t, s, "st_fan")
	two := subscribe(t.Context(), t, s, "st_fan")
	other := subscribe(t.Context(), t, s, "st_fan_other")
	must(t, s.Notify(t.Context(), "st_fan", "both"))
	one.next(t, "both")
	two.next(t, "both")
	other.none(t, "a subscriber of another channel must get nothing")
}

// testNoticeCancel: once its context ends, a subscription gets nothing
// more, while the others go on.
func testNoticeCancel(t *testing.T, s store.Shared) {
	ctx, cancel := context.WithCancel(t.Context())
	cancelled := subscribe(ctx, t, s, "st_cancel")
	live := subscribe(t.Context(), t, s, "st_cancel")
	must(t, s.Notify(t.Context(), "st_cancel", "before"))
	cancelled.next(t, "before")
	live.next(t, "before")
	cancel()
	must(t, s.Notify(t.Context(), "st_cancel", "after"))
	live.next(t, "after")
	cancelled.none(t, "a cancelled subscription must get nothing more")
}

// testNoticeNoSubscriber: a notice no one listens to is no error.
func testNoticeNoSubscriber(t *testing.T, s store.Shared) {
	must(t, s.Notify(t.Context(), "st_nobody", "x"))
}

// testNoticeBad: a channel or payload that some backend cannot carry is
// refused (store.CheckNotice's rules), by Notify and Subscribe alike.
func testNoticeBad(t *testing.T, s store.Shared) {
	ctx := t.Context()
	for _, channel := range []string{"", "with space", "new\nline", strings.Repeat("c", 64)} {
		if err := s.Notify(ctx, channel, "x"); !errors.Is(err, store.ErrInvalidNotice) {
			t.Errorf("Notify on the channel %q: %v, want ErrInvalidNotice", channel, err)
		}
		if err := s.Subscribe(ctx, channel, func(string) {}); !errors.Is(err, store.ErrInvalidNotice) {
			t.Errorf("Subscribe to the channel %q: %v, want ErrInvalidNotice", channel, err)
		}
	}
	for _, payload := range []string{"nul\x00inside", "\xff\xfe", strings.Repeat("p", 8000)} {
		if err := s.Notify(ctx, "st_bad", payload); !errors.Is(err, store.ErrInvalidNotice) {
			t.Errorf("Notify of the payload %.20q: %v, want ErrInvalidNotice", payload, err)
		}
	}
	must(t, s.Notify(ctx, strings.Repeat("c", 63), strings.Repeat("p", 7900)))
}
