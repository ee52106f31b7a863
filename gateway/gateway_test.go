package gateway

import (
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"

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
