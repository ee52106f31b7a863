package mcpmux_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	gw "github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
)

const approvalPage = "https://gw.example/approvals/"

// approvalService is a Service on a sealed store in memory, on clock.
func approvalService(t testing.TB, clock *fakeClock) *approvals.Service {
	t.Helper()
	ring, err := store.NewRing([][]byte{bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := approvals.New(approvals.Options{Store: store.Seal(store.NewMemoryClock(clock.now), ring), TTL: time.Minute, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// approveWrites grants every caller connector a, asking approval of its
// write tools.
var approveWrites = []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"a"}, Approve: []string{grants.ApproveWrites}}}

// waiting calls a_slow with ms and returns the approval id of the tool
// error that asks for approval, failing the test on any other answer.
func waiting(t *testing.T, c *client.Client, ms int) string {
	t.Helper()
	res, err := callTool(t, c, "a_slow", map[string]any{"ms": ms})
	if err != nil || res == nil || !res.IsError {
		t.Fatalf("want a tool error asking for approval, got %+v, %v", res, err)
	}
	s, _ := res.StructuredContent.(map[string]any)
	id, _ := s["approval_id"].(string)
	text := res.Content[0].(mcp.TextContent).Text
	if s["status"] != "needs_approval" || s["approval_url"] != approvalPage+id || !strings.Contains(text, approvalPage+id) {
		t.Fatalf("the tool error does not carry the approval page: %+v", res)
	}
	return id
}

// passed calls a_slow with ms and fails the test unless the tool answers.
func passed(t *testing.T, c *client.Client, ms int) {
	t.Helper()
	res, err := callTool(t, c, "a_slow", map[string]any{"ms": ms})
	if err != nil || res == nil || res.IsError {
		t.Fatalf("want the tool's answer, got %+v, %v", res, err)
	}
}

// TestApprovalEndToEnd: a write call waits without reaching the upstream;
// an approver approves; the retry passes, once; a changed argument, a
// replay and an expired approval each wait anew; a caller cannot approve
// its own call; a read-only tool never asks; a denial is a clear tool
// error.
func TestApprovalEndToEnd(t *testing.T) {
	t.Parallel()
	for _, era := range eras {
		t.Run(era.Name, func(t *testing.T) {
			t.Parallel()
			ups, conns := startUpstreams(t, testupstream.BothEras, "a")
			clock := &fakeClock{}
			svc := approvalService(t, clock)
			g := startGateway(t, conns, approveWrites, clock.option(), func(o *mcpmux.Options) {
				o.Approval = gw.ApprovalGate(func() *approvals.Service { return svc }, "https://gw.example")
			})
			c := g.connect(t, "/mcp", "alice", "", era.Opts...)
			ctx := context.Background()
			decide := func(id, by string, approve bool) error {
				_, err := svc.Decide(ctx, approvals.Decision{ID: id, By: by, Approve: approve})
				return err
			}

			// A read-only tool never asks.
			if res, err := callTool(t, c, "a_echo", map[string]any{"message": "hi"}); err != nil || res.IsError {
				t.Fatalf("the read-only tool: %+v, %v", res, err)
			}

			id := waiting(t, c, 1)
			if n := countMethod(ups["a"], "tools/call"); n != 1 {
				t.Fatalf("the upstream saw %d tools/call, want only the echo", n)
			}
			if again := waiting(t, c, 1); again != id {
				t.Fatalf("the same call asked again made request %s, not %s", again, id)
			}
			if err := decide(id, "alice", true); !errors.Is(err, approvals.ErrSelfApproval) {
				t.Fatalf("alice approved her own call: %v", err)
			}
			if err := decide(id, "carol", true); err != nil {
				t.Fatal(err)
			}
			if other := waiting(t, c, 2); other == id {
				t.Fatal("a changed argument used the approval")
			}
			passed(t, c, 1)
			if n := countMethod(ups["a"], "tools/call"); n != 2 {
				t.Fatalf("the upstream saw %d tools/call, want 2", n)
			}
			replay := waiting(t, c, 1)
			if replay == id {
				t.Fatal("a replay used the approval again")
			}

			// Expired: approved, then the retry comes too late.
			if err := decide(replay, "carol", true); err != nil {
				t.Fatal(err)
			}
			clock.advance(2 * time.Minute)
			late := waiting(t, c, 1)
			if late == replay {
				t.Fatal("an expired approval was used")
			}

			// Denied: a clear tool error, and nothing upstream.
			if err := decide(late, "carol", false); err != nil {
				t.Fatal(err)
			}
			res, err := callTool(t, c, "a_slow", map[string]any{"ms": 1})
			if err != nil || !res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "denied by an approver") {
				t.Fatalf("the denied call: %+v, %v", res, err)
			}
			if n := countMethod(ups["a"], "tools/call"); n != 2 {
				t.Fatalf("the upstream saw %d tools/call after the denial, want 2", n)
			}
		})
	}
}

// TestApprovalConcurrentRetries: of two retries of one approved call at
// once, only one reaches the tool.
func TestApprovalConcurrentRetries(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	clock := &fakeClock{}
	svc := approvalService(t, clock)
	g := startGateway(t, conns, approveWrites, func(o *mcpmux.Options) {
		o.Approval = gw.ApprovalGate(func() *approvals.Service { return svc }, "https://gw.example")
	})
	c1 := g.connect(t, "/mcp", "alice", "")
	c2 := g.connect(t, "/mcp", "alice", "", eras[1].Opts...)
	id := waiting(t, c1, 1)
	if _, err := svc.Decide(context.Background(), approvals.Decision{ID: id, By: "carol", Approve: true}); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for _, c := range []*client.Client{c1, c2} {
		wg.Go(func() {
			if res, err := callTool(t, c, "a_slow", map[string]any{"ms": 1}); err == nil && !res.IsError {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || countMethod(ups["a"], "tools/call") != 1 {
		t.Fatalf("%d retries passed and the upstream saw %d calls, want 1 and 1", ok.Load(), countMethod(ups["a"], "tools/call"))
	}
}

// TestApprovalInBand: a 2026-07-28 agent that declares URL elicitation
// gets an input-required result with the approval page, and its retry
// with the gateway's requestState passes once approved; a 2025-11-25 one
// gets the URL elicitation error.
func TestApprovalInBand(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	clock := &fakeClock{}
	svc := approvalService(t, clock)
	g := startGateway(t, conns, approveWrites, func(o *mcpmux.Options) {
		o.Approval = gw.ApprovalGate(func() *approvals.Service { return svc }, "https://gw.example")
	})
	caps := map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}

	modern := newRaw(t, g.URL+"/mcp", agentHeader("alice", ""))
	modern.version = v20260728
	params := map[string]any{"name": "a_slow", "arguments": map[string]any{"ms": 1}, "_meta": map[string]any{mcp.MetaKeyClientCapabilities: caps}}
	r := modern.call("tools/call", params)
	var res struct {
		ResultType    string                      `json:"resultType"`
		InputRequests map[string]mcp.InputRequest `json:"inputRequests"`
		RequestState  string                      `json:"requestState"`
	}
	if r.result == nil || json.Unmarshal(r.result, &res) != nil || res.ResultType != "input_required" || len(res.InputRequests) != 1 {
		t.Fatalf("want an input-required result, got %d %s", r.status, r.body)
	}
	retry := clone(params)
	var id string
	for key, req := range res.InputRequests {
		if req.Elicitation == nil || req.Elicitation.Mode != "url" || !strings.HasPrefix(req.Elicitation.URL, approvalPage) {
			t.Fatalf("input request %s: %s", key, r.result)
		}
		id = strings.TrimPrefix(req.Elicitation.URL, approvalPage)
		retry["inputResponses"] = map[string]any{key: map[string]any{"action": "accept"}}
	}
	retry["requestState"] = res.RequestState
	if _, err := svc.Decide(context.Background(), approvals.Decision{ID: id, By: "carol", Approve: true}); err != nil {
		t.Fatal(err)
	}
	if r := modern.call("tools/call", retry); r.result == nil || strings.Contains(string(r.result), `"isError":true`) || strings.Contains(string(r.result), "input_required") {
		t.Fatalf("the retry after approval: %d %s", r.status, r.body)
	}

	legacy := newRaw(t, g.URL+"/mcp", agentHeader("bob", ""))
	init := legacy.call("initialize", map[string]any{"protocolVersion": v20251125, "capabilities": caps,
		"clientInfo": map[string]any{"name": "raw", "version": "1"}})
	legacy.version, legacy.session = v20251125, init.header.Get(mcp.HeaderSessionID)
	r = legacy.call("tools/call", map[string]any{"name": "a_slow", "arguments": map[string]any{"ms": 1}})
	if r.err == nil || r.err.Code != mcp.URL_ELICITATION_REQUIRED || !strings.Contains(string(r.err.Data), approvalPage) {
		t.Fatalf("want the URL elicitation error, got %d %s", r.status, r.body)
	}
}
