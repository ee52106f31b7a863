package testupstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// mcp-go v1.2.x loses a notification that a request's SSE forwarder has
// taken off the session but not yet written when the tool handler returns:
// handlePost closes the forwarder's done channel first, and the forwarder
// then drops what it holds. So the progress tool must not answer before
// each of its notifications has been written. Nothing in mcp-go says when
// that happened, so the server watches its own responses: every response
// writer is wrapped in a progressWriter, which recognises the SSE frames
// that carry notifications/progress and, once a flush has handed them to
// the connection, reports them to the waiting call. A legacy session hands
// each notification to whichever of its streams (a POST's or the GET's)
// reads first, so the watch covers every response, not only the call's.
//
// One loss remains that no tool can prevent: the forwarder of a request
// that has just finished may run on for a moment, and on a legacy session,
// whose requests all share the session's notifications, it can take one
// meant for a later request and drop it the same way. The tool then waits
// for a notification that will never be written, up to deliveryCap.

// deliveryCap bounds how long the progress tool waits for its
// notifications to be written. Writing one takes milliseconds even on a
// loaded machine; past the cap it is taken as lost (see above) and the tool
// answers anyway, so that the caller sees the loss rather than a call that
// hangs. It stays well under the deadlines callers give a call (the
// gateway's tests allow 10s), so that a loss the caller tolerates does not
// turn into a failed call.
const deliveryCap = 2 * time.Second

// progressMethod marks the SSE frames worth decoding.
var progressMethod = []byte(`"` + mcp.MethodNotificationProgress + `"`)

// deliveries is what calls of the progress tool wait for: progress
// notifications that the server has yet to write to a response stream.
type deliveries struct {
	mu      sync.Mutex
	waiting map[string][]*delivery // by progress token, as JSON
	log     []ProgressWrite        // every progress notification written, in order
	noLog   bool                   // Options.NoRecord: keep no log
}

// ProgressWrite is one progress notification the server wrote to a
// response stream: its token (as JSON), its progress, and the method of
// the request whose stream carried it (POST for a request's own stream, or
// another request's; GET for a legacy session's notification stream).
type ProgressWrite struct {
	Token    string
	Progress float64
	Stream   string
}

// ProgressWrites returns the progress notifications the server has written
// to its response streams, in the order it wrote them (none with
// Options.NoRecord). A test can tell
// from it what a client could have seen, and on which stream.
func (s *Server) ProgressWrites() []ProgressWrite {
	s.delivered.mu.Lock()
	defer s.delivered.mu.Unlock()
	return slices.Clone(s.delivered.log)
}

// SendProgress sends the caller of the tool call in ctx one
// notifications/progress under token, progress 1 of 1 with message, and
// returns once the server has written it to a response stream, or
// deliveryCap has passed. A tool added through s.MCP that sends progress
// uses it, as the catalog's progress tool does: mcp-go drops a
// notification still on its way out when the tool returns (see above).
func (s *Server) SendProgress(ctx context.Context, token mcp.ProgressToken, message string) error {
	wait, err := s.delivered.expect(token, 1)
	if err != nil {
		return err
	}
	defer s.delivered.forget(wait)
	if err := notifyProgress(ctx, token, 1, 1, message); err != nil {
		return err
	}
	wait.await(ctx)
	return nil
}

// delivery is one call's notifications, progress 1..steps, and which of
// them have been written. The set grows with what is written, not with
// steps, which comes from the caller.
type delivery struct {
	token   string
	steps   int
	written map[float64]struct{}
	done    chan struct{} // closed once all steps are written
}

// expect registers a call that will send progress 1..steps under token. It
// must come before the first notification is sent, which the server may
// write at once.
func (d *deliveries) expect(token mcp.ProgressToken, steps int) (*delivery, error) {
	key, err := tokenKey(token)
	if err != nil {
		return nil, err
	}
	w := &delivery{token: key, steps: steps, written: map[float64]struct{}{}, done: make(chan struct{})}
	if steps <= 0 {
		close(w.done)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting == nil {
		d.waiting = make(map[string][]*delivery)
	}
	d.waiting[key] = append(d.waiting[key], w)
	return w, nil
}

// forget stops tracking w, delivered or not.
func (d *deliveries) forget(w *delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rest := slices.DeleteFunc(d.waiting[w.token], func(x *delivery) bool { return x == w })
	if len(rest) == 0 {
		delete(d.waiting, w.token)
		return
	}
	d.waiting[w.token] = rest
}

// written records that progress under token reached a connection. Calls
// that share a token each take their own notification, the first waiting
// call first.
func (d *deliveries) written(token string, progress float64, stream string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.noLog {
		d.log = append(d.log, ProgressWrite{Token: token, Progress: progress, Stream: stream})
	}
	for _, w := range d.waiting[token] {
		if w.take(progress) {
			return
		}
	}
}

// take records progress as written if it is one of w's that was not yet,
// and reports whether it was.
func (w *delivery) take(progress float64) bool {
	_, dup := w.written[progress]
	if dup || progress < 1 || progress > float64(w.steps) || progress != float64(int(progress)) {
		return false
	}
	w.written[progress] = struct{}{}
	if len(w.written) == w.steps {
		close(w.done)
	}
	return true
}

// await waits until every notification of w has been written, ctx ends or
// deliveryCap passes.
func (w *delivery) await(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, deliveryCap)
	defer cancel()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
}

// tokenKey is a progress token's JSON, the same for the value a tool got
// from its request and the value decoded back from the frame it sent.
func tokenKey(token any) (string, error) {
	b, err := json.Marshal(token)
	if err != nil {
		return "", fmt.Errorf("encoding progress token: %w", err)
	}
	return string(b), nil
}

// progressWriter passes a response through unchanged and reports each
// progress notification in it to deliveries once it has reached the
// connection, that is once a Flush after it succeeded. mcp-go writes
// every SSE event whole ("event: message\ndata: <json>\n\n") and flushes
// after it; a partial line is kept until its end arrives all the same.
// mcp-go serialises its writes to one response, as net/http requires, so
// the writer needs no lock of its own.
type progressWriter struct {
	http.ResponseWriter
	d         *deliveries
	stream    string          // the request's method
	line      []byte          // the start of an unfinished line
	unflushed []progressFrame // written since the last flush
}

// progressFrame is one progress notification seen in a response.
type progressFrame struct {
	token    string
	progress float64
}

// watch wraps w, the response to a request of the given method, so that
// the progress notifications written to it are reported to d.
func (d *deliveries) watch(w http.ResponseWriter, method string) *progressWriter {
	return &progressWriter{ResponseWriter: w, d: d, stream: method}
}

// Write writes b and notes the progress notifications in it, when the
// response is an event stream: a JSON response carries only a result.
func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.ResponseWriter.Write(b)
	if strings.HasPrefix(p.Header().Get("Content-Type"), "text/event-stream") {
		p.scan(b[:n])
	}
	return n, err
}

// Flush sends what was written to the connection, and then reports the
// progress notifications in it. A failed flush reports nothing: those
// notifications never reached the client.
func (p *progressWriter) Flush() {
	if http.NewResponseController(p.ResponseWriter).Flush() == nil {
		p.report()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (p *progressWriter) Unwrap() http.ResponseWriter {
	return p.ResponseWriter
}

// finish flushes the notifications written since the last flush, if any,
// once the handler is done. Only a response mcp-go wrote through a
// captureWriter (see splice.go) has any.
func (p *progressWriter) finish() {
	if len(p.unflushed) > 0 {
		p.Flush()
	}
}

// scan splits b into lines, keeping an unfinished one for the next Write.
func (p *progressWriter) scan(b []byte) {
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n')
		if end < 0 {
			p.line = append(p.line, b...)
			return
		}
		line := b[:end]
		if len(p.line) > 0 {
			line = append(p.line, line...)
		}
		p.see(line)
		p.line = p.line[:0]
		b = b[end+1:]
	}
}

// see notes line when it is the data of a progress notification.
func (p *progressWriter) see(line []byte) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok || !bytes.Contains(data, progressMethod) {
		return
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			ProgressToken any     `json:"progressToken"`
			Progress      float64 `json:"progress"`
		} `json:"params"`
	}
	if json.Unmarshal(data, &msg) != nil || msg.Method != string(mcp.MethodNotificationProgress) {
		return
	}
	key, err := tokenKey(msg.Params.ProgressToken)
	if err != nil {
		return
	}
	p.unflushed = append(p.unflushed, progressFrame{token: key, progress: msg.Params.Progress})
}

// report passes the flushed notifications on to deliveries.
func (p *progressWriter) report() {
	for _, f := range p.unflushed {
		p.d.written(f.token, f.progress, p.stream)
	}
	p.unflushed = p.unflushed[:0]
}
