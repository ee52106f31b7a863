package mcpmux_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestListFetchOutlivesAgent checks that one agent cannot degrade another
// by going away: alice's list starts the fetch of a slow upstream's tools
// and she disconnects mid-fetch; bob, whose credential is the same, lists
// right after and must get the tools, from that same fetch, rather than a
// cancellation cached as the upstream's failure.
func TestListFetchOutlivesAgent(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, everyone)
	alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
	bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20260728)
	// Each upstream response takes this long, well within the connector's
	// timeout (testConnector), and the fetch needs two: discover, list.
	ups["a"].SetDelay(300 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	body, h := alice.request(1, "tools/list", nil)
	req := alice.newRequest(http.MethodPost, bytes.NewReader(body), int64(len(body)), h).WithContext(ctx)
	if resp, err := alice.hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("alice's list answered %d before she went away: the upstream is not slow", resp.StatusCode)
	}
	// Time for the gateway to see her connection close.
	time.Sleep(50 * time.Millisecond)

	r := bob.call("tools/list", nil)
	if r.result == nil {
		t.Fatalf("bob's list: %d %s", r.status, r.body)
	}
	if tools := listed(t, r.result, "tools", "name"); !slices.Contains(tools, "a_echo") {
		t.Fatalf("bob's list lacks a's tools after alice went away: %v", tools)
	}
	if n := countMethod(ups["a"], "tools/list"); n != 1 {
		t.Errorf("the upstream saw %d tools/list, want the one both agents shared", n)
	}
}
