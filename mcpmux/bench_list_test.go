package mcpmux_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// The list benchmarks: a cached aggregated tools/list served in process,
// so that ns/op and allocs/op are the gateway's alone (no client, no
// upstream, no socket), at 10 connectors × 50 tools and at 100 × 100.
// Each reports the answer's size and the time per KB of it: a cached list
// should cost what writing its answer costs, the same per KB at 500 tools
// as at 10,000. BenchmarkListHTTP compares the gateway over HTTP with one
// upstream serving the same 500 tools directly.

// catalogTools are the tools a testupstream lists before its extra ones.
const upstreamOwnTools = 9

func BenchmarkListCached(b *testing.B) {
	for _, size := range []struct{ conns, tools int }{{10, 50}, {100, 100}} {
		b.Run(fmt.Sprintf("%dx%d", size.conns, size.tools), func(b *testing.B) {
			mux := benchListMux(b, size.conns, size.tools)
			for _, era := range []string{"legacy", "modern"} {
				b.Run(era, func(b *testing.B) {
					benchInProcess(b, newInProcessAgent(b, mux, era == "modern"))
				})
			}
		})
	}
}

func BenchmarkListHTTP(b *testing.B) {
	b.Run("gateway-10x50", func(b *testing.B) {
		g := startGateway(b, benchListConns(b, 10, 50), benchGrant)
		benchParallel(b, g.URL+"/mcp", "tools/list", `{}`)
	})
	b.Run("direct-500", func(b *testing.B) {
		up := testupstream.StartT(b, testupstream.Options{Name: "up0", NoRecord: true, ExtraTools: 500 - upstreamOwnTools})
		benchParallel(b, up.URL, "tools/list", `{}`)
	})
}

// benchListConns starts n upstreams of tools tools each, and their
// connectors.
func benchListConns(b *testing.B, n, tools int) []*connectors.Connector {
	conns := make([]*connectors.Connector, n)
	for i := range conns {
		id := fmt.Sprintf("up%d", i)
		up := testupstream.StartT(b, testupstream.Options{Name: id, NoRecord: true, ExtraTools: tools - upstreamOwnTools})
		conns[i] = testConnector(b, id, up, connectors.Auth{})
	}
	return conns
}

// benchListMux serves n upstreams of tools tools each to everyone.
func benchListMux(b *testing.B, n, tools int) *mcpmux.Mux {
	policy, err := grants.New(benchGrant)
	if err != nil {
		b.Fatal(err)
	}
	mux, err := mcpmux.New(mcpmux.Options{Connectors: benchListConns(b, n, tools), Policy: policy})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mux.Close() })
	return mux
}

// inProcessAgent sends requests to a Mux's ServeMCP directly, reusing one
// request and one response writer, so that what a benchmark counts is the
// gateway's.
type inProcessAgent struct {
	mux  *mcpmux.Mux
	req  *http.Request
	body bytes.Reader
	w    countingWriter
}

// newInProcessAgent opens a session of caller "bench", legacy or
// stateless (2026-07-28).
func newInProcessAgent(b *testing.B, mux *mcpmux.Mux, modern bool) *inProcessAgent {
	a := &inProcessAgent{mux: mux, w: countingWriter{header: http.Header{}}}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", &a.body)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
	a.req = req
	if modern {
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/list")
		return a
	}
	a.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	if a.w.status != http.StatusOK || a.w.header.Get("Mcp-Session-Id") == "" {
		b.Fatalf("initialize: HTTP %d", a.w.status)
	}
	req.Header.Set("Mcp-Session-Id", a.w.header.Get("Mcp-Session-Id"))
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	a.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return a
}

// listBody is the tools/list request; modern adds the _meta that a
// 2026-07-28 request carries.
func (a *inProcessAgent) listBody() string {
	if a.req.Header.Get("Mcp-Session-Id") != "" {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	}
	return `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}`
}

// send serves one request body and keeps the status and the size of the
// answer.
func (a *inProcessAgent) send(body string) {
	a.body.Reset([]byte(body))
	a.req.Body = io.NopCloser(&a.body)
	a.req.ContentLength = int64(len(body))
	clear(a.w.header)
	a.w.status, a.w.n = 0, 0
	a.mux.ServeMCP(&a.w, a.req, grants.Caller{ID: "bench"}, "")
}

// benchInProcess lists the tools once to fill the cache and check the
// answer is whole, then measures listing them, reporting the answer's
// bytes and the time per KB of it.
func benchInProcess(b *testing.B, a *inProcessAgent) {
	body := a.listBody()
	a.w.keep = true
	a.send(body)
	a.w.keep = false
	if a.w.status != http.StatusOK || !strings.Contains(a.w.kept.String(), `"result"`) || strings.Contains(a.w.kept.String(), "nextCursor") {
		b.Fatalf("tools/list: HTTP %d: %.300s", a.w.status, a.w.kept.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a.send(body)
	}
	b.StopTimer()
	if a.w.status != http.StatusOK {
		b.Fatalf("tools/list: HTTP %d", a.w.status)
	}
	b.ReportMetric(float64(a.w.n), "answer-B")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(float64(a.w.n)/1024), "ns/KB")
}

// countingWriter is a ResponseWriter that counts the body it is given,
// keeping it only when asked to.
type countingWriter struct {
	header http.Header
	status int
	n      int
	keep   bool
	kept   bytes.Buffer
}

func (w *countingWriter) Header() http.Header { return w.header }

func (w *countingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	if w.keep {
		w.kept.Write(p)
	}
	return len(p), nil
}
