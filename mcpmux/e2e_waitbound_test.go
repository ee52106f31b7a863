package mcpmux_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/conformance"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// silentUpstream is a legacy upstream whose tool never answers, as one
// whose question to the agent went astray waits for an answer that never
// comes (mcp-go records a question for replay only when no notification
// stream is attached yet). It counts the calls it was told to give up.
func silentUpstream(t *testing.T, id string, timeout time.Duration) (*connectors.Connector, *atomic.Int32) {
	t.Helper()
	var cancelled atomic.Int32
	s := server.NewMCPServer("silent", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("wait"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-ctx.Done()
		cancelled.Add(1)
		return nil, ctx.Err()
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s,
		server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)),
		server.WithStreamableHTTPProtocolVersions(testupstream.LegacyVersions()...)))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/mcp")
	return &connectors.Connector{ID: id, URL: u, Timeout: timeout}, &cancelled
}

// TestUpstreamWaitBounded checks that the gateway waits for a legacy
// upstream's answer no longer than the connector's timeout, for a legacy
// agent as for a 2026-07-28 one, whose call is parkable and so would be
// held for parkTTL, and tells the upstream to stop.
func TestUpstreamWaitBounded(t *testing.T) {
	const timeout = time.Second
	c, cancelled := silentUpstream(t, "s", timeout)
	g := startGateway(t, []*connectors.Connector{c}, everyone)
	for _, version := range []string{v20260728, v20251125} {
		agent := dialRaw(t, g.URL+"/connectors/s/mcp", agentHeader("alice", ""), version)
		before := cancelled.Load()
		start := time.Now()
		r := agent.call("tools/call", map[string]any{"name": "wait"})
		if d := time.Since(start); d > 4*timeout {
			t.Errorf("%s: the call took %v with a connector timeout of %v", version, d, timeout)
		}
		if r.err == nil || !strings.Contains(r.err.Message, "timed out") {
			t.Errorf("%s: want the upstream's timeout, got %d %s", version, r.status, r.body)
		}
		wait.Until(t, 5*time.Second, "the upstream told to stop", func() bool { return cancelled.Load() > before })
	}
}

// TestAgentTimeNotCounted checks that the time an upstream waits for the
// agent's answer does not count against the connector's timeout: a parked
// call whose agent answers after longer than that completes.
func TestAgentTimeNotCounted(t *testing.T) {
	const timeout = 500 * time.Millisecond
	c := startFixture(t, "f", conformance.LegacyOnly)
	c.Timeout = timeout
	g := startGateway(t, []*connectors.Connector{c}, everyone)
	alice := dialRaw(t, g.URL+"/connectors/f/mcp", agentHeader("alice", ""), v20260728)
	caps := map[string]any{mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}}}
	params := map[string]any{"name": "test_elicitation", "arguments": map[string]any{"message": "who are you?"}, "_meta": caps}
	var first struct {
		InputRequests map[string]any `json:"inputRequests"`
		RequestState  string         `json:"requestState"`
	}
	r := alice.call("tools/call", params)
	if r.result == nil || json.Unmarshal(r.result, &first) != nil || len(first.InputRequests) != 1 {
		t.Fatalf("want an input-required result, got %d %s", r.status, r.body)
	}
	time.Sleep(3 * timeout)
	retry := clone(params)
	retry["requestState"] = first.RequestState
	for key := range first.InputRequests {
		retry["inputResponses"] = map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"response": "ada"}}}
	}
	if r := alice.call("tools/call", retry); r.result == nil || !strings.Contains(string(r.result), "ada") {
		t.Errorf("the answer given after the connector's timeout: %d %s", r.status, r.body)
	}
}
