package mcpmux_test

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// BenchmarkToolsCallGatewayCatalog calls one connector's echo through the
// aggregated endpoint at 1, 10 and 100 connectors, from 100 to 10,000
// tools in all. Nothing on the call path may grow with the catalog: ns/op
// and allocs/op should stay within 10% from the first case to the last.
// The spread case calls the 100 connectors in turn, which adds what 100
// upstream connections cost, in this process as in the upstreams'.
func BenchmarkToolsCallGatewayCatalog(b *testing.B) {
	for _, size := range []struct{ connectors, tools, spread int }{{1, 100, 1}, {10, 50, 1}, {100, 100, 1}, {100, 100, 100}} {
		name := fmt.Sprintf("connectors=%d/tools=%d", size.connectors, size.connectors*size.tools)
		if size.spread > 1 {
			name += "/spread"
		}
		b.Run(name, func(b *testing.B) { benchCatalog(b, size.connectors, size.tools, size.spread) })
	}
}

// BenchmarkToolsCallGatewayLargeCatalog is the 100 x 100 case of
// BenchmarkToolsCallGatewayCatalog on its own, to compare with
// BenchmarkToolsCallGateway's one connector.
func BenchmarkToolsCallGatewayLargeCatalog(b *testing.B) {
	benchCatalog(b, 100, 100, 1)
}

// benchCatalog serves n upstreams of tools tools each through one
// gateway, and calls the echo tools of the first spread of them in turn
// from every session.
func benchCatalog(b *testing.B, n, tools, spread int) {
	conns := make([]*connectors.Connector, n)
	params := make([]string, n)
	for i := range conns {
		id := fmt.Sprintf("c%03d", i)
		up := testupstream.StartT(b, testupstream.Options{Name: id, NoRecord: true, ExtraTools: tools - len(catalogTools)})
		conns[i] = testConnector(b, id, up, connectors.Auth{})
		params[i] = `{"name":"` + id + `_echo",` + benchEcho + `}`
	}
	g := startGateway(b, conns, benchGrant, benchUsage)
	url := g.URL + "/mcp"
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	sessions := make(chan *benchSession, runtime.GOMAXPROCS(0))
	for range cap(sessions) {
		sessions <- openBenchSession(b, hc, url)
	}
	// One call of each connector before the clock starts, so that every
	// upstream session is open and every list cached.
	first := <-sessions
	for _, p := range params {
		if err := first.request("tools/call", p); err != nil {
			b.Fatal(err)
		}
	}
	sessions <- first
	runBenchEach(b, sessions, "tools/call", func(i int) string { return params[i%spread] })
}
