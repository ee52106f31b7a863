package mcpgate

import (
	"sync"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// newTestGateway is a gateway with an empty mux.
func newTestGateway(t *testing.T) *gateway {
	t.Helper()
	mux, err := mcpmux.New(mcpmux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mux.Close() })
	return &gateway{mux: mux}
}

// TestGatewayRetire checks that a replaced gateway's mux stays open for
// the requests that began on it and closes when the last one ends, and
// that no request starts on a replaced gateway.
func TestGatewayRetire(t *testing.T) {
	a := &App{live: new(live)}
	old, next := newTestGateway(t), newTestGateway(t)
	a.live.gw.Store(old)

	inFlight := a.acquire()
	a.live.gw.Swap(next)
	old.retire()
	if old.closed.Load() {
		t.Fatal("a replaced gateway closed under a request")
	}
	if g := a.acquire(); g != next {
		t.Fatal("a request started on the replaced gateway")
	} else {
		g.leave()
	}
	inFlight.leave()
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
				g := a.acquire()
				if g.closed.Load() {
					t.Error("a request holds a closed gateway")
				}
				g.leave()
			}
		})
	}
	for range 200 {
		g := newTestGateway(t)
		a.live.gw.Swap(g).retire()
	}
	close(stop)
	wg.Wait()
}
