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
	// At most the queue and the one the writer holds; the rest are missed.
	if len(events) < 2 || len(events) > notifyQueue+2 {
		t.Fatalf("the answer has %d events; want at most %d notifications and the result", len(events), notifyQueue+1)
	}
	last := -1
	for i, e := range events[:len(events)-1] {
		var n int
		if _, err := fmt.Sscanf(e[strings.Index(e, "data: ")+len("data: "):], `{"n":%d}`, &n); err != nil || n <= last {
			t.Fatalf("event %d = %q after notification %d: not in the order sent", i, e, last)
		}
		last = n
	}
	if !strings.HasSuffix(events[0], `{"n":0}`) {
		t.Errorf("the first event is %q, not the first notification", events[0])
	}
	if final := events[len(events)-1]; !strings.Contains(final, `"result":{}`) {
		t.Errorf("the last event is %q, not the result", final)
	}
}
