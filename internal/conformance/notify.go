package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// mcp-go v1.2.x can lose a notification that a request's stream forwarder
// has taken off the session but not yet written when the handler returns:
// the forwarder then sees the request finished and drops it. The suite
// counts the progress and log notifications of its tools, so a tool that
// sends them answers only once each has been written to a response stream
// (the call's own, or a legacy session's GET stream). Nothing in mcp-go
// says when that happened, so the fixture watches its own responses.

// deliveryCap bounds how long a tool waits for one of its notifications to
// be written; past it the notification is taken as lost and the tool
// answers anyway, so that the suite reports the loss instead of hanging.
const deliveryCap = 5 * time.Second

// notifications counts, by content, the notifications written to response
// streams and not yet claimed by the tool that sent them.
type notifications struct {
	mu      sync.Mutex
	written map[string]int
	changed chan struct{} // closed, and replaced, at every write
}

func newNotifications() *notifications {
	return &notifications{written: make(map[string]int), changed: make(chan struct{})}
}

// notificationKey identifies a notification by its method and its params,
// marshalled canonically (encoding/json sorts map keys).
func notificationKey(method string, params any) string {
	b, err := json.Marshal(params)
	if err != nil {
		return method
	}
	return method + " " + string(b)
}

// wrote records the notifications in one SSE event's data, if any.
func (n *notifications) wrote(data []byte) {
	var msg struct {
		Method string         `json:"method"`
		ID     any            `json:"id"`
		Params map[string]any `json:"params"`
	}
	if json.Unmarshal(data, &msg) != nil || msg.Method == "" || msg.ID != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.written[notificationKey(msg.Method, msg.Params)]++
	close(n.changed)
	n.changed = make(chan struct{})
}

// wait returns once the notification with this method and params has been
// written, claiming it, or when ctx ends or deliveryCap passes.
func (n *notifications) wait(ctx context.Context, method string, params map[string]any) error {
	key := notificationKey(method, params)
	timeout := time.NewTimer(deliveryCap)
	defer timeout.Stop()
	for {
		n.mu.Lock()
		if n.written[key] > 0 {
			n.written[key]--
			n.mu.Unlock()
			return nil
		}
		changed := n.changed
		n.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("notification %s not written within %s", method, deliveryCap)
		}
	}
}

// watch wraps a response writer so that the notifications written through
// it are recorded once flushed to the connection.
func (n *notifications) watch(w http.ResponseWriter) http.ResponseWriter {
	return &watchedWriter{ResponseWriter: w, n: n}
}

// watchedWriter keeps what was written since the last flush and, at each
// flush, records the notifications among the complete SSE events in it.
type watchedWriter struct {
	http.ResponseWriter
	n       *notifications
	pending []byte
}

// Write passes p on and keeps a copy for the next Flush.
func (w *watchedWriter) Write(p []byte) (int, error) {
	w.pending = append(w.pending, p...)
	return w.ResponseWriter.Write(p)
}

// Flush flushes the connection, then records what it carried.
func (w *watchedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	// SSE events end with a blank line (WHATWG HTML, 9.2.6); a partial
	// event stays pending until its end is flushed too.
	end := bytes.LastIndex(w.pending, []byte("\n\n"))
	if end < 0 {
		return
	}
	scanner := bufio.NewScanner(bytes.NewReader(w.pending[:end]))
	scanner.Buffer(nil, len(w.pending))
	for scanner.Scan() {
		if data, ok := bytes.CutPrefix(scanner.Bytes(), []byte("data: ")); ok {
			w.n.wrote(data)
		}
	}
	w.pending = append(w.pending[:0], w.pending[end+2:]...)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *watchedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
