package mcpmux_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/conformance"
)

// startFixture serves the conformance fixture of era on 127.0.0.1 and
// returns it as connector id.
func startFixture(t *testing.T, id string, era conformance.Era) *connectors.Connector {
	t.Helper()
	f := conformance.NewFixture(era)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close)
	u, _ := url.Parse(srv.URL + "/mcp")
	return &connectors.Connector{ID: id, URL: u, Timeout: 10 * time.Second}
}

// answering is a legacy agent's handlers for the upstream's questions.
type answering struct{}

func (answering) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"username": "ada", "email": "ada@example.com", "name": "Ada"}}}, nil
}

func (answering) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.TextContent{Type: "text", Text: "sampled by the agent"}}, Model: "agent-model"}, nil
}

// TestRelayLegacy checks that an upstream's questions during a call reach
// the legacy agent that made it, and its answers the upstream: a legacy
// upstream's requests, and a 2026-07-28 upstream's input-required result,
// which gets the agent's session capabilities to ask by.
func TestRelayLegacy(t *testing.T) {
	for _, era := range []conformance.Era{conformance.LegacyOnly, conformance.ModernOnly} {
		t.Run(era.String(), func(t *testing.T) {
			g := startGateway(t, []*connectors.Connector{startFixture(t, "f", era)}, everyone)
			c := agenttest.Dial(t, g.URL+"/connectors/f/mcp", map[string]string{"X-Test-User": "alice"},
				client.WithElicitationHandler(answering{}), client.WithSamplingHandler(answering{}),
				client.WithProtocolVersion(mcp.ProtocolVersion20251125))
			cases := []struct{ tool, want string }{
				{"test_elicitation", "ada"},
				{"test_sampling", "sampled by the agent"},
			}
			if era == conformance.ModernOnly {
				// It asks only for what the request declares: the session's.
				cases = append(cases, struct{ tool, want string }{"test_input_required_result_capabilities", "received elicit_input,sample_input"})
			}
			for _, tc := range cases {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"message": "hi", "prompt": "hi"}}})
				cancel()
				if err != nil {
					t.Fatalf("%s: %v", tc.tool, err)
				}
				if text := mcp.GetTextFromContent(res.Content[0]); res.IsError || !strings.Contains(text, tc.want) {
					t.Errorf("%s: %v", tc.tool, res.Content)
				}
			}
		})
	}
}

// TestRelayParked checks the bridge the other way: a 2026-07-28 agent
// whose connector speaks only the legacy era gets the upstream's question
// as an input-required result, and its retry with the answer completes
// the parked call; a retry by another caller, or without the answer, does
// not; and a question the agent did not declare it can answer is refused
// to the upstream instead of being put to the agent.
func TestRelayParked(t *testing.T) {
	g := startGateway(t, []*connectors.Connector{startFixture(t, "f", conformance.LegacyOnly)}, everyone)
	alice := newRaw(t, g.URL+"/connectors/f/mcp", agentHeader("alice", ""))
	alice.version = v20260728
	bob := newRaw(t, g.URL+"/connectors/f/mcp", agentHeader("bob", ""))
	bob.version = v20260728
	caps := map[string]any{mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}}}
	params := map[string]any{"name": "test_elicitation", "arguments": map[string]any{"message": "who are you?"}, "_meta": caps}

	var first struct {
		ResultType    string                      `json:"resultType"`
		InputRequests map[string]mcp.InputRequest `json:"inputRequests"`
		RequestState  string                      `json:"requestState"`
	}
	r := alice.call("tools/call", params)
	if r.result == nil || json.Unmarshal(r.result, &first) != nil || first.ResultType != "input_required" || len(first.InputRequests) != 1 {
		t.Fatalf("want an input-required result, got %d %s", r.status, r.body)
	}
	var key string
	for k, req := range first.InputRequests {
		key = k
		if req.Method != mcp.MethodElicitationCreate || req.Elicitation == nil || req.Elicitation.Message != "who are you?" {
			t.Fatalf("the question is not the upstream's: %s", r.result)
		}
	}
	retry := clone(params)
	retry["requestState"] = first.RequestState
	if r := bob.call("tools/call", retry); r.status != 400 || r.err == nil || r.err.Code != -32602 {
		t.Errorf("bob retrying alice's call: %d %s", r.status, r.body)
	}
	if r := alice.call("tools/call", retry); r.result == nil || !strings.Contains(string(r.result), `"input_required"`) || !strings.Contains(string(r.result), key) {
		t.Errorf("a retry without the answer must get the question again: %d %s", r.status, r.body)
	}
	retry["inputResponses"] = map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"response": "ada"}}}
	r = alice.call("tools/call", retry)
	if r.result == nil || !strings.Contains(string(r.result), "ada") || strings.Contains(string(r.result), "input_required") {
		t.Fatalf("the retry with the answer: %d %s", r.status, r.body)
	}
	if r := alice.call("tools/call", retry); r.err == nil || r.err.Code != -32602 {
		t.Errorf("a retry of a finished call: %d %s", r.status, r.body)
	}

	// Sampling was not declared: the upstream is refused, the agent is
	// not asked, and the call ends with the upstream's answer to that.
	sample := map[string]any{"name": "test_sampling", "arguments": map[string]any{"prompt": "hi"}, "_meta": caps}
	if r := alice.call("tools/call", sample); r.result != nil && strings.Contains(string(r.result), "input_required") {
		t.Errorf("the agent was asked for sampling it did not declare: %s", r.result)
	}
}

// TestRelayLogLevel checks that a legacy agent gets a legacy upstream's
// log messages at the level it set (the fixture logs three at info), and
// all of them before it sets one.
func TestRelayLogLevel(t *testing.T) {
	g := startGateway(t, []*connectors.Connector{startFixture(t, "f", conformance.LegacyOnly)}, everyone)
	for _, tc := range []struct {
		level string
		want  int
	}{{"", 3}, {"warning", 0}, {"info", 3}} {
		var got atomic.Int32
		c := agenttest.Dial(t, g.URL+"/connectors/f/mcp", map[string]string{"X-Test-User": "alice"},
			client.WithProtocolVersion(mcp.ProtocolVersion20251125))
		c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method == string(mcp.MethodNotificationMessage) {
				got.Add(1)
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if tc.level != "" {
			if err := c.SetLevel(ctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevel(tc.level)}}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "test_tool_with_logging"}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if n := got.Load(); int(n) != tc.want {
			t.Errorf("level %q: %d log messages, want %d", tc.level, n, tc.want)
		}
	}
}
