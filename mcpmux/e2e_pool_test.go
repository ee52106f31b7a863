package mcpmux_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestUpstreamPooling checks that many agents calling at once share one
// upstream session: a legacy upstream sees a single initialize.
func TestUpstreamPooling(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", Era: testupstream.LegacyOnly, BearerToken: upstreamAuth})
	g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone)
	var agents []*client.Client
	for i := range 5 {
		era := eras[i%len(eras)]
		agents = append(agents, g.connect(t, "/mcp", fmt.Sprintf("user%d", i), "", era.Opts...))
	}
	if n := len(up.Requests()); n != 0 {
		t.Fatalf("opening agent sessions sent %d requests upstream", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("call %d", i)
			res, err := callTool(t, agents[i%len(agents)], "a_echo", map[string]any{"message": msg})
			switch {
			case err != nil:
				errs <- err
			case res.Content[0].(mcp.TextContent).Text != msg:
				errs <- fmt.Errorf("call %d got %v", i, res.Content)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := countMethod(up, "initialize"); n != 1 {
		t.Errorf("the upstream saw %d initialize requests, want 1", n)
	}
	if n := countMethod(up, "tools/call"); n != 50 {
		t.Errorf("the upstream saw %d tools/call requests, want 50", n)
	}
}
