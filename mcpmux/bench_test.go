package mcpmux_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// These benchmarks run the agent, the gateway and the upstreams in one
// process, so ns/op and allocs/op count all three: compare Gateway with
// Direct, not with zero. bench/run measures them as separate processes.

// benchGrant gives every identified caller every connector.
var benchGrant = []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}}

// benchUsage records each call's use as the gateway does in production,
// so that the benchmarks count its cost.
func benchUsage(o *mcpmux.Options) { o.Used = new(connectors.Usage).Touch }

// benchEcho is the arguments of every benchmarked tools/call.
const benchEcho = `"arguments":{"message":"hello from the benchmark"}`

func BenchmarkToolsCallDirect(b *testing.B) {
	up := benchUpstream(b, "bench")
	benchParallel(b, up.URL, "tools/call", `{"name":"echo",`+benchEcho+`}`)
}

func BenchmarkToolsCallGateway(b *testing.B) {
	up := benchUpstream(b, "bench")
	g := startGateway(b, []*connectors.Connector{testConnector(b, "bench", up, connectors.Auth{})}, benchGrant, benchUsage)
	benchParallel(b, g.URL+"/mcp", "tools/call", `{"name":"bench_echo",`+benchEcho+`}`)
}

// BenchmarkAggregatedToolsListCached lists the tools of ten upstreams
// through the aggregated endpoint. The warm-up request fills the list
// cache, so the measured requests never reach an upstream.
func BenchmarkAggregatedToolsListCached(b *testing.B) {
	var conns []*connectors.Connector
	for i := range 10 {
		id := fmt.Sprintf("up%d", i)
		conns = append(conns, testConnector(b, id, benchUpstream(b, id), connectors.Auth{}))
	}
	g := startGateway(b, conns, benchGrant)
	benchParallel(b, g.URL+"/mcp", "tools/list", `{}`)
}

func BenchmarkDirectToolsList(b *testing.B) {
	up := benchUpstream(b, "up0")
	benchParallel(b, up.URL, "tools/list", `{}`)
}

// benchUpstream starts an upstream that does not record requests.
func benchUpstream(b *testing.B, name string) *testupstream.Server {
	return testupstream.StartT(b, testupstream.Options{Name: name, NoRecord: true})
}

// benchParallel sends method with params to url from GOMAXPROCS
// goroutines, each on its own legacy-era session opened beforehand.
func benchParallel(b *testing.B, url, method, params string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	n := runtime.GOMAXPROCS(0)
	sessions := make(chan *benchSession, n)
	for range n {
		sessions <- openBenchSession(b, hc, url)
	}
	runBench(b, sessions, method, params)
}

// runBench sends method with params from every session in parallel, after
// one request before the clock starts: it opens the gateway's upstream
// session and fills its list cache.
func runBench(b *testing.B, sessions chan *benchSession, method, params string) {
	first := <-sessions
	if err := first.request(method, params); err != nil {
		b.Fatal(err)
	}
	sessions <- first
	runBenchEach(b, sessions, method, func(int) string { return params })
}

// runBenchEach sends method from every session in parallel, with the
// params that params returns for the session's i-th request.
func runBenchEach(b *testing.B, sessions chan *benchSession, method string, params func(i int) string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := <-sessions
		for i := 0; pb.Next(); i++ {
			if err := s.request(method, params(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchSession is a lean legacy-era MCP session over net/http, so that
// the benchmarks measure the servers rather than an SDK client. Only one
// goroutine uses it at a time.
type benchSession struct {
	hc     *http.Client
	url    string
	header http.Header
	nextID int64
	buf    bytes.Buffer
}

// openBenchSession runs the initialize handshake as user "bench".
func openBenchSession(b *testing.B, hc *http.Client, url string) *benchSession {
	b.Helper()
	s := &benchSession{hc: hc, url: url, nextID: 1, header: http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json, text/event-stream"},
		"X-Test-User":  {"bench"},
	}}
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
		`"capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`
	resp, err := s.post([]byte(init))
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("initialize %s: %v %s", url, err, s.buf.Bytes())
	}
	s.header.Set("Mcp-Session-Id", resp.Header.Get("Mcp-Session-Id"))
	s.header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err = s.post([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("notifications/initialized %s: %v %s", url, err, s.buf.Bytes())
	}
	return s
}

// request sends one request and checks that it got a result.
func (s *benchSession) request(method, params string) error {
	body := make([]byte, 0, 64+len(method)+len(params))
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = strconv.AppendInt(body, s.nextID, 10)
	body = append(body, `,"method":"`+method+`","params":`+params+`}`...)
	s.nextID++
	resp, err := s.post(body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, s.buf.Bytes())
	case !bytes.Contains(s.buf.Bytes(), []byte(`"result"`)) || bytes.Contains(s.buf.Bytes(), []byte(`"isError":true`)):
		return fmt.Errorf("%s: no result: %s", method, s.buf.Bytes())
	}
	return nil
}

// post sends body and reads the whole reply into s.buf.
func (s *benchSession) post(body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = s.header
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	s.buf.Reset()
	_, err = s.buf.ReadFrom(resp.Body)
	return resp, err
}
