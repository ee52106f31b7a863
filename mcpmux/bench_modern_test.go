package mcpmux_test

import (
	"net/http"
	"runtime"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// benchModernMeta is the _meta every 2026-07-28 request carries.
const benchModernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

func BenchmarkToolsCallDirectModern(b *testing.B) {
	up := benchUpstream(b, "bench")
	benchModern(b, up.URL, "echo")
}

func BenchmarkToolsCallGatewayModern(b *testing.B) {
	up := benchUpstream(b, "bench")
	g := startGateway(b, []*connectors.Connector{testConnector(b, "bench", up, connectors.Auth{})}, benchGrant, benchUsage)
	benchModern(b, g.URL+"/mcp", "bench_echo")
}

// benchModern calls tool with the echo arguments at 2026-07-28 from
// GOMAXPROCS goroutines: stateless, so no session is opened.
func benchModern(b *testing.B, url, tool string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	params := `{"name":"` + tool + `",` + benchEcho + `,` + benchModernMeta + `}`
	n := runtime.GOMAXPROCS(0)
	sessions := make(chan *benchSession, n)
	for range n {
		sessions <- &benchSession{hc: hc, url: url, nextID: 1, header: http.Header{
			"Content-Type":         {"application/json"},
			"Accept":               {"application/json, text/event-stream"},
			"X-Test-User":          {"bench"},
			"Mcp-Protocol-Version": {"2026-07-28"},
			"Mcp-Method":           {"tools/call"},
			"Mcp-Name":             {tool},
		}}
	}
	runBench(b, sessions, "tools/call", params)
}
