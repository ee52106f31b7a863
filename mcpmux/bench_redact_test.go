package mcpmux_test

import (
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// BenchmarkToolsCallGatewayBearer is BenchmarkToolsCallGateway with a
// credential on every upstream request, which the gateway then looks for
// in every answer: the cost of hiding an echoed credential on the hot path.
func BenchmarkToolsCallGatewayBearer(b *testing.B) {
	const token = "ya29.a0AfH6SMBx9Zq-T0k3n_zZ/benchmark+token=="
	up := testupstream.StartT(b, testupstream.Options{Name: "bench", NoRecord: true, BearerToken: token})
	g := startGateway(b, []*connectors.Connector{testConnector(b, "bench", up,
		connectors.Auth{Type: connectors.AuthBearer, Token: token})}, benchGrant)
	benchParallel(b, g.URL+"/mcp", "tools/call", `{"name":"bench_echo",`+benchEcho+`}`)
}
