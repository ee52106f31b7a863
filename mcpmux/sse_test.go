package mcpmux

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// stalledWriter is an agent's connection that takes nothing until it is
// released: an agent that does not read its answer.
type stalledWriter struct {
	header  http.Header
	release chan struct{}
	mu      sync.Mutex
	body    bytes.Buffer
}

func (s *stalledWriter) Header() http.Header { return s.header }
func (s *stalledWriter) WriteHeader(int)     {}
func (s *stalledWriter) Flush()              {}

func (s *stalledWriter) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body.Write(p)
}

// TestNotifyNeverBlocks checks that relaying a notification never waits
// for the agent, since it runs on the reader of an upstream stream that
// other agents' requests may share: with the agent not reading, a flood of
// notifications returns at once, and once it reads, its answer holds the
// first of them in order, then the final message.
func TestNotifyNeverBlocks(t *testing.T) {
	w := &stalledWriter{header: http.Header{}, release: make(chan struct{})}
	rs := &responder{w: w, canSSE: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 * notifyQueue {
			rs.notify(fmt.Appendf(nil, `{"n":%d}`, i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(w.release)
		t.Fatal("notify waited for an agent that does not read")
	}
	close(w.release)
	rs.respond([]byte("1"), &reply{result: []byte(`{}`)}, http.StatusOK)
	body := w.body.String()
	events := strings.Split(strings.TrimSpace(body), "\n\n")
	if len(events) < 2 || len(events) > notifyQueue+2 {
		t.Fatalf("the answer has %d events; want the first notifications (at most the queue and one in hand) and the result", len(events))
	}
	for i, e := range events[:len(events)-1] {
		if want := fmt.Sprintf(`data: {"n":%d}`, i); !strings.HasSuffix(e, want) {
			t.Fatalf("event %d = %q, want %q", i, e, want)
		}
	}
	if last := events[len(events)-1]; !strings.Contains(last, `"result":{}`) {
		t.Errorf("the last event is %q, not the result", last)
	}
}
