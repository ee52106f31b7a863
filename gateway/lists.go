package gateway

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// An upstream tells of a change to its lists on the session it has with
// one instance; the others learn it through the shared store, so that
// every instance's cache goes stale and every instance's listening
// agents whose view changed are told.

const (
	// listsChannel carries "<instance> <connector> <method>" for each
	// list_changed an instance's upstream sent. Connector ids and
	// methods hold no space.
	listsChannel = "mcpgate_lists"
	// tellTimeout bounds sending one notice, which runs apart from the
	// upstream's stream reader that heard the news.
	tellTimeout = 10 * time.Second
)

// ListNews carries upstreams' list_changed between the instances that
// share Store. Its fields are set before first use.
type ListNews struct {
	Store store.Shared
	// Instance names this instance, so that it ignores its own news.
	Instance string
	Logger   *zap.Logger

	mu      sync.Mutex
	stopped bool
	sending sync.WaitGroup
}

// Tell tells the other instances that connector's upstream sent method.
// It is a mux's OnListChanged: it must not block the reader that heard
// it, so the notice goes out on its own goroutine, which Stop waits for.
func (n *ListNews) Tell(connector, method string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.sending.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tellTimeout)
		defer cancel()
		if err := n.Store.Notify(ctx, listsChannel, n.Instance+" "+connector+" "+method); err != nil {
			n.Logger.Warn("telling the other instances of an upstream's list change", zap.String("connector", connector), zap.Error(err))
		}
	})
}

// Stop tells the other instances nothing more, and waits for the notices
// on their way: the store they go through may close once it returns. A
// nil ListNews has nothing to stop.
func (n *ListNews) Stop() {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	n.sending.Wait()
}

// Follow hands the other instances' news to the mux serving now, until
// ctx ends.
func (n *ListNews) Follow(ctx context.Context, mux func() *mcpmux.Mux) error {
	return n.Store.Subscribe(ctx, listsChannel, func(payload string) {
		from, rest, _ := strings.Cut(payload, " ")
		connector, method, ok := strings.Cut(rest, " ")
		if ok && from != n.Instance {
			mux().ListChanged(connector, method)
		}
	})
}
