package mcpmux_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestSessionFlood checks that callers flooding the gateway with sessions
// cannot push out another caller's: with room for 4 sessions, 2 a caller,
// alice's session keeps answering while ten other identities open three
// each; the ones the gateway has no room for get a 503 with Retry-After
// and an error naming the limit, and a flooder at its own limit only
// replaces its own.
func TestSessionFlood(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	sessions := mcpmux.NewSessions()
	sessions.PerCaller, sessions.Max = 2, 4
	t.Cleanup(sessions.Close)
	g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone,
		func(o *mcpmux.Options) { o.Sessions = sessions })

	alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	var opened, refused int
	for i := range 10 {
		for range 3 {
			r := newRaw(t, g.URL+"/mcp", agentHeader(fmt.Sprint("flood", i), "")).call("initialize", map[string]any{
				"protocolVersion": v20251125, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "flood", "version": "1"},
			})
			switch {
			case r.status == http.StatusOK && r.result != nil:
				opened++
			case isSessionLimit(r):
				refused++
			default:
				t.Fatalf("flood%d initialize: %d %s", i, r.status, r.body)
			}
		}
	}
	// alice was quiet all along: her session is the least recently used.
	if r := alice.call("tools/list", nil); r.result == nil || !slices.Contains(listed(t, r.result, "tools", "name"), "a_echo") {
		t.Fatalf("alice's session after the flood: %d %s", r.status, r.body)
	}
	// flood0 opens 2 and then replaces its own; flood1 gets the last place.
	if opened != 4 || refused != 26 {
		t.Errorf("%d sessions opened and %d refused, want 4 and 26", opened, refused)
	}
	if err := initializeError(t, g.URL+"/mcp"); err == nil || !strings.Contains(err.Error(), "limit of 4 open sessions") {
		t.Errorf("an mcp-go client's initialize: %v", err)
	}
}

// isSessionLimit reports whether r is the gateway's refusal of a session
// for want of room.
func isSessionLimit(r *rawReply) bool {
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	return r.status == http.StatusServiceUnavailable && err == nil && secs >= 1 && r.err != nil &&
		r.err.Code == -32000 && strings.Contains(r.err.Message, "limit of 4 open sessions")
}

// initializeError is the error an mcp-go client gets from initialize, as a
// newcomer.
func initializeError(t *testing.T, url string) error {
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"X-Test-User": "newcomer"}))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(v20251125))
	defer c.Close()
	ctx := ctxT(t)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "newcomer", Version: "1"}
	req.Params.ProtocolVersion = v20251125
	_, err = c.Initialize(ctx, req)
	return err
}

// TestStreamBounds checks the notification streams that sessions open:
// one caller holds at most 16, the 17th answers 503 with Retry-After
// while another caller still gets one, and a session's streams end with
// the session.
func TestStreamBounds(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone)
	open := func(c *rawClient) *http.Response {
		t.Helper()
		resp, err := c.hc.Do(c.newRequest(http.MethodGet, nil, 0, http.Header{"Accept": {"text/event-stream"}}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	var streams []*http.Response
	for i := range 16 {
		resp := open(alice)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("alice's stream %d: %d", i, resp.StatusCode)
		}
		streams = append(streams, resp)
	}
	resp := open(alice)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "16 open notification streams") {
		t.Errorf("alice's 17th stream: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
	if resp := open(bob); resp.StatusCode != http.StatusOK {
		t.Errorf("bob's stream beside alice's: %d", resp.StatusCode)
	}

	// The session ends: so do its streams, and alice may open new ones.
	if r := alice.do(http.MethodDelete, nil, 0, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	for i, s := range streams {
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, s.Body); done <- err }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("alice's stream %d outlived her session", i)
		}
	}
	alice = dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	eventually(t, 5*time.Second, "room for alice's new stream", func() bool {
		resp := open(alice)
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
