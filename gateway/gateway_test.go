package gateway

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// newTestGateway is a gateway with an empty mux.
func newTestGateway(t *testing.T) *Gateway {
	t.Helper()
	mux, err := mcpmux.New(mcpmux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mux.Close() })
	return &Gateway{mux: mux}
}

// TestLiveRetire checks that a replaced gateway's mux stays open for
// the requests that began on it and closes when the last one ends, and
// that no request starts on a replaced gateway.
func TestLiveRetire(t *testing.T) {
	l := new(Live)
	old, next := newTestGateway(t), newTestGateway(t)
	l.Set(old)

	inFlight := l.Acquire()
	l.Set(next)
	if old.closed.Load() {
		t.Fatal("a replaced gateway closed under a request")
	}
	if g := l.Acquire(); g != next {
		t.Fatal("a request started on the replaced gateway")
	} else {
		g.Leave()
	}
	inFlight.Leave()
	if !old.closed.Load() {
		t.Fatal("the replaced gateway stayed open after its last request")
	}
	if next.closed.Load() {
		t.Fatal("the serving gateway closed")
	}

	// Requests racing rebuilds never hold a closed gateway.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := l.Acquire()
				if g.closed.Load() {
					t.Error("a request holds a closed gateway")
				}
				g.Leave()
			}
		})
	}
	for range 200 {
		l.Set(newTestGateway(t))
	}
	close(stop)
	wg.Wait()
}

// TestBuildCopiesOptions checks that a generation keeps the options it
// was built with: the host changes its own when the store opens, while
// the generation built before may be serving (run under -race).
func TestBuildCopiesOptions(t *testing.T) {
	reg, err := connectors.NewRegistry(connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{Logger: zap.NewNop(), OAuth: oauthflow.Options{PublicURL: "https://gw.example.com"}}
	g, err := Build(o, reg.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.close)
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.ConnectKey = []byte("a key that came with the store")
	}()
	_ = g.ConnectTag("alice")
	<-done
	if tag := g.ConnectTag("alice"); tag != "" {
		t.Errorf("the generation took up the host's later key: tag %q", tag)
	}
}

// subscriptions is a shared store that keeps the context of each
// subscription to its notices.
type subscriptions struct {
	*store.Memory
	mu   sync.Mutex
	ctxs []context.Context
}

func (s *subscriptions) Subscribe(ctx context.Context, channel string, fn func(string)) error {
	s.mu.Lock()
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	return s.Memory.Subscribe(ctx, channel, fn)
}

// TestCloseEndsManager checks that closing a generation ends its OAuth
// manager's subscription to other instances' grant changes: a
// generation is built at every registry change, and each one left
// subscribed would hold a goroutine until the process ends.
func TestCloseEndsManager(t *testing.T) {
	st := &subscriptions{Memory: store.NewMemory()}
	m, err := oauthflow.New(oauthflow.Options{Store: st, PublicURL: "https://gw.example.com", StateKey: make([]byte, 32)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newTestGateway(t)
	g.manager = m
	l := new(Live)
	l.Set(g)
	if len(st.ctxs) != 1 || st.ctxs[0].Err() != nil {
		t.Fatalf("the manager's subscriptions before the close: %v", st.ctxs)
	}
	l.Close()
	if st.ctxs[0].Err() == nil {
		t.Fatal("the manager still follows other instances after its generation closed")
	}
}
