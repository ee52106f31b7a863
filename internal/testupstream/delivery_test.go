package testupstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// rawCaller calls the progress tool without an SDK, so that the test sees
// every event of every stream as the server wrote it.
type rawCaller struct {
	url     string
	version string
	session string // Mcp-Session-Id, for a legacy session
}

// post sends one JSON-RPC message with the headers of the caller's era.
func (c *rawCaller) post(ctx context.Context, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, c.version)
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	// 2026-07-28 wants the method, and a tool call's name, in headers too
	// (SEP-2243).
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal([]byte(body), &msg) == nil {
		req.Header.Set(mcp.HeaderMethod, msg.Method)
		if msg.Params.Name != "" {
			req.Header.Set(mcp.HeaderName, msg.Params.Name)
		}
	}
	return http.DefaultClient.Do(req)
}

// initialize opens a legacy session: initialize, then
// notifications/initialized, without which mcp-go sends no notification.
func (c *rawCaller) initialize(ctx context.Context) error {
	resp, err := c.post(ctx, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+c.version+
		`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if err != nil {
		return err
	}
	drainClose(resp)
	if c.session = resp.Header.Get("Mcp-Session-Id"); resp.StatusCode != http.StatusOK || c.session == "" {
		return fmt.Errorf("initialize: %s, session %q", resp.Status, c.session)
	}
	resp, err = c.post(ctx, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return err
	}
	drainClose(resp)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: %s", resp.Status)
	}
	return nil
}

// listen opens the legacy session's GET stream and sends each progress
// value read from it to got, until ctx ends.
func (c *rawCaller) listen(ctx context.Context, got chan<- float64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, c.version)
	req.Header.Set("Mcp-Session-Id", c.session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		drainClose(resp)
		return fmt.Errorf("GET stream: %s", resp.Status)
	}
	go func() {
		defer resp.Body.Close()
		_, _ = readEvents(resp.Body, func(e sseMessage) bool {
			if e.Method == string(mcp.MethodNotificationProgress) {
				got <- e.Params.Progress
			}
			return true
		})
	}()
	return nil
}

// callProgress calls the progress tool with token and returns the progress
// values its own stream carried ahead of the result.
func (c *rawCaller) callProgress(ctx context.Context, token string, steps int) ([]float64, error) {
	meta := `"progressToken":"` + token + `"`
	if mcp.IsModernProtocol(c.version) {
		meta += `,"` + mcp.MetaKeyProtocolVersion + `":"` + c.version + `","` + mcp.MetaKeyClientCapabilities + `":{}`
	}
	resp, err := c.post(ctx, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`+
		`{"name":"progress","arguments":{"steps":%d},"_meta":{%s}}}`, steps, meta))
	if err != nil {
		return nil, err
	}
	defer drainClose(resp)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("answered %s %s: %s", resp.Status, ct, body)
	}
	var got []float64
	answered, err := readEvents(resp.Body, func(e sseMessage) bool {
		if e.Method == string(mcp.MethodNotificationProgress) && e.Params.ProgressToken == token {
			got = append(got, e.Params.Progress)
		}
		return e.Result == nil
	})
	if err == nil && !answered {
		err = errors.New("the stream ended without a result")
	}
	return got, err
}

// sseMessage is what the test reads of a JSON-RPC message.
type sseMessage struct {
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Params struct {
		ProgressToken string  `json:"progressToken"`
		Progress      float64 `json:"progress"`
	} `json:"params"`
}

// readEvents decodes the data line of each SSE event in body until each
// returns false, and reports whether it did.
func readEvents(body io.Reader, each func(sseMessage) bool) (bool, error) {
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		var msg sseMessage
		if err := json.Unmarshal(data, &msg); err != nil {
			return false, fmt.Errorf("decoding %s: %w", data, err)
		}
		if !each(msg) {
			return true, nil
		}
	}
	return false, sc.Err()
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// progressCase is one way of calling the progress tool.
type progressCase struct {
	name    string
	version string
	listen  bool // open the legacy session's GET stream first
}

var progressCases = []progressCase{
	{name: "legacy", version: mcp.ProtocolVersion20251125},
	{name: "legacy with GET stream", version: mcp.ProtocolVersion20251125, listen: true},
	{name: "modern", version: mcp.ProtocolVersion20260728},
}

// progressCall is one call of the test, with its session set up.
type progressCall struct {
	rawCaller
	token string
	onGET chan float64 // progress read from the GET stream, if open
}

// TestProgressDelivered checks that every progress notification of a call
// reaches the client while many calls run at once on a busy CPU, in both
// eras: all of them on the call's own stream, ahead of the result, or,
// with a legacy session's GET stream open, each on one of the two
// streams. mcp-go drops a notification that is still on its way out when
// the tool returns, so this holds only because the tool waits until each
// has been written.
func TestProgressDelivered(t *testing.T) {
	const sessions, steps = 8, 5
	up := StartT(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var calls []*progressCall
	for _, pc := range progressCases {
		for i := range sessions {
			c, err := newProgressCall(ctx, up.URL, pc, fmt.Sprintf("%s-%d", pc.name, i), steps)
			if err != nil {
				t.Fatal(err)
			}
			calls = append(calls, c)
		}
	}
	awaitForwarders(t)

	defer loadCPU()()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.check(ctx, steps); err != nil {
				t.Errorf("%s: %v", c.token, err)
			}
		}()
	}
	wg.Wait()
}

// newProgressCall sets up the session of a call of pc: a legacy one is
// initialized, and its GET stream opened if pc says so.
func newProgressCall(ctx context.Context, url string, pc progressCase, token string, steps int) (*progressCall, error) {
	c := &progressCall{rawCaller: rawCaller{url: url, version: pc.version}, token: token}
	if !mcp.IsModernProtocol(pc.version) {
		if err := c.initialize(ctx); err != nil {
			return nil, err
		}
	}
	if pc.listen {
		c.onGET = make(chan float64, steps)
		if err := c.listen(ctx, c.onGET); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// awaitForwarders waits until no request is left in mcp-go's POST handler.
// mcp-go may leave a finished request's SSE forwarder running for a
// moment, and on a legacy session such a forwarder can take the next
// notification sent to the session and drop it: a loss no tool can
// prevent, so the calls start only once the requests that set up their
// sessions are all gone.
func awaitForwarders(t *testing.T) {
	t.Helper()
	eventually(t, func() bool {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		return !strings.Contains(stacks.String(), "(*StreamableHTTPServer).handlePost")
	})
}

// loadCPU keeps every P busy until the returned func is called, so that
// mcp-go's goroutines wait for a CPU as they do on a loaded machine.
func loadCPU() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// check makes the call and checks that progress 1..steps all arrived, in
// order on the call's own stream.
func (c *progressCall) check(ctx context.Context, steps int) error {
	own, err := c.callProgress(ctx, c.token, steps)
	if err != nil {
		return err
	}
	if !slices.IsSorted(own) {
		return fmt.Errorf("progress on the call's stream out of order: %v", own)
	}
	all := slices.Clone(own)
	if c.onGET != nil {
		// What the GET stream carried was written before the result, but
		// the test reads the two streams apart.
		all = collect(c.onGET, all, steps)
	}
	slices.Sort(all)
	if want := oneTo(steps); !slices.Equal(all, want) {
		return fmt.Errorf("progress %v arrived (%v on the call's stream), want %v", all, own, want)
	}
	return nil
}

// collect adds values from ch to got until it holds n or five seconds
// pass.
func collect(ch <-chan float64, got []float64, n int) []float64 {
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case p := <-ch:
			got = append(got, p)
		case <-timeout:
			return got
		}
	}
	return got
}

// oneTo returns 1, 2, ... n.
func oneTo(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}

// progressFrameText is the SSE event mcp-go writes for progress p under
// token.
func progressFrameText(token string, p int) string {
	return "event: message\ndata: " + `{"jsonrpc":"2.0","method":"notifications/progress","params":` +
		fmt.Sprintf(`{"message":"step","progress":%d,"progressToken":%s,"total":2}}`, p, token) + "\n\n"
}

// pendingOf counts what w still waits for.
func pendingOf(d *deliveries, w *delivery) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.steps - len(w.written)
}

// TestProgressWriter checks how a response is watched: it passes through
// unchanged, a notification counts once it is flushed (or the handler is
// done), even when it was written in pieces, and only for a call that
// waits for that token and value; calls that share a token each take
// their own.
func TestProgressWriter(t *testing.T) {
	var d deliveries
	first, err := d.expect("tok", 2)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := d.expect("tok", 1)
	other, _ := d.expect(7.0, 1)
	defer d.forget(first)
	defer d.forget(second)
	defer d.forget(other)

	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/event-stream")
	pw := d.watch(rec, http.MethodPost)
	one, two := progressFrameText(`"tok"`, 1), progressFrameText(`"tok"`, 2)
	_, _ = pw.Write([]byte(one[:30]))
	_, _ = pw.Write([]byte(one[30:]))
	if n := pendingOf(&d, first); n != 2 {
		t.Fatalf("counted before the flush: %d pending", n)
	}
	pw.Flush()
	_, _ = pw.Write([]byte(one + two))
	pw.finish()
	if pendingOf(&d, first) != 0 || pendingOf(&d, second) != 0 {
		t.Errorf("pending after the flushes: first %d, second %d", pendingOf(&d, first), pendingOf(&d, second))
	}
	if pendingOf(&d, other) != 1 {
		t.Error("another token's call counted progress of tok")
	}
	if got, want := rec.Body.String(), one+one+two; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}

	// A JSON response carries a result only, and is not read.
	rec = httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	pw = d.watch(rec, http.MethodPost)
	_, _ = pw.Write([]byte(progressFrameText("7", 1)))
	pw.Flush()
	if pendingOf(&d, other) != 1 {
		t.Error("a JSON response counted as a progress notification")
	}
}
