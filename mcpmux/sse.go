package mcpmux

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// sseWriter writes server-sent events to an agent.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// newSSE starts an event stream response.
func newSSE(w http.ResponseWriter) *sseWriter {
	// X-Accel-Buffering keeps proxies such as nginx from holding events
	// back (Streamable HTTP, "Receiving Messages"); no-cache keeps any
	// cache from storing a stream that is one agent's answer.
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A ResponseController reaches the Flusher under wrappers that do not
	// flush themselves, as Caddy's handlers wrap the writer: without a
	// flush an event waits in a buffer until the answer ends, which for a
	// question to the agent is never.
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// send writes one JSON-RPC message as an event. An event's data must be
// one line, so a message with line breaks is compacted first.
func (s *sseWriter) send(msg []byte) error {
	if bytes.IndexByte(msg, '\n') >= 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, msg) == nil {
			msg = buf.Bytes()
		}
	}
	out := make([]byte, 0, len(msg)+24)
	out = append(out, "event: message\ndata: "...)
	out = append(out, msg...)
	out = append(out, "\n\n"...)
	if _, err := s.w.Write(out); err != nil {
		return err
	}
	s.flush()
	return nil
}

// comment writes a keep-alive comment, which clients ignore (Streamable
// HTTP, "Receiving Messages": a line beginning with a colon).
func (s *sseWriter) comment() error {
	if _, err := s.w.Write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	s.flush()
	return nil
}

// flush sends what is buffered. A writer that cannot flush leaves it to
// the end of the answer, which is the best it can do.
func (s *sseWriter) flush() {
	_ = s.rc.Flush()
}

// notifyQueue bounds the notifications waiting to be written to one
// agent's answer: room for a burst of progress, and a bound on what an
// agent that stopped reading makes the gateway hold.
const notifyQueue = 64

// responder answers one agent request: plain JSON, unless the upstream
// streams notifications (progress) while it works and the agent accepts
// an event stream, in which case the answer switches to SSE.
//
// A notification may come from the reader of any upstream stream, which
// other agents' requests share (a legacy upstream session hands its
// notifications to whichever of its streams reads first). So notify never
// writes to the agent itself: it queues the message for a writer of this
// answer's own, and an agent that reads slower than its upstream reports
// misses notifications instead of holding up everyone on that stream.
type responder struct {
	w      http.ResponseWriter
	canSSE bool

	mu      sync.Mutex
	sse     *sseWriter    // once the answer is an event stream
	done    bool          // the final message is on its way: nothing more is queued
	queue   chan []byte   // notifications for the writer, once it runs
	drained chan struct{} // closed when the writer has written the queue
}

// notify relays a notification to the agent, switching to SSE. It never
// blocks on the agent.
func (rs *responder) notify(msg []byte) {
	if !rs.canSSE {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.done {
		return
	}
	rs.startSSE()
	// A copy: the message may sit in the queue while its sender, the
	// reader of an upstream stream, reuses its buffer for the next event.
	select {
	case rs.queue <- bytes.Clone(msg):
	default: // the agent is not keeping up: it misses this one
	}
}

// startSSE switches the answer to an event stream, once; rs.mu is held.
func (rs *responder) startSSE() {
	if rs.sse == nil {
		rs.sse = newSSE(rs.w)
		rs.queue, rs.drained = make(chan []byte, notifyQueue), make(chan struct{})
		go rs.write(rs.sse, rs.queue, rs.drained)
	}
}

// write writes the queued notifications until the queue closes. It is
// the only writer of the stream until respond takes over, after it has
// finished: an http.ResponseWriter is not safe for concurrent use. A
// failed write goes on draining the queue, so that respond never waits.
func (rs *responder) write(sse *sseWriter, queue <-chan []byte, drained chan<- struct{}) {
	defer close(drained)
	for msg := range queue {
		_ = sse.send(msg)
	}
}

// respond writes the final message with the given status (used only when
// the answer is still plain JSON), after the notifications queued before
// it.
func (rs *responder) respond(id []byte, rep *reply, status int) {
	// done, under the lock, stops notify from queueing: nothing may
	// follow the response, which ends the request's stream (Streamable
	// HTTP, "Receiving Messages").
	rs.mu.Lock()
	rs.done = true
	sse, drained := rs.sse, rs.drained
	if rs.queue != nil {
		close(rs.queue)
	}
	rs.mu.Unlock()
	if sse == nil {
		writeAnswer(rs.w, status, id, rep)
		return
	}
	<-drained
	_ = sse.send(answer(id, rep))
}

// writeAnswer writes a JSON-RPC response as the body, in pieces, so that a
// large result is never copied.
func writeAnswer(w http.ResponseWriter, status int, id []byte, rep *reply) {
	if id == nil {
		id = []byte("null")
	}
	member, value := `,"result":`, rep.result
	if rep.err != nil {
		member, value = `,"error":`, rep.err
	}
	const head = `{"jsonrpc":"2.0","id":`
	// The length is known, so the answer goes with Content-Length rather
	// than chunked, however many writes it takes.
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(head)+len(id)+len(member)+len(value)+1))
	w.WriteHeader(status)
	if len(value) < 8<<10 {
		// Small: one write costs less than five through the server's
		// writers.
		_, _ = w.Write(answer(id, rep))
		return
	}
	for _, part := range [][]byte{[]byte(head), id, []byte(member), value, {'}'}} {
		if _, err := w.Write(part); err != nil {
			return
		}
	}
}

// writeJSON writes a JSON body.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
