package mcpmux_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// twoQuestions is a legacy upstream whose tool two_questions needs two
// answers, which mcp-go asks a legacy client for at once: two elicitation
// requests on the call's stream, each answered on a goroutine of its own.
// It records the answers that reach it.
type twoQuestions struct {
	mu      sync.Mutex
	answers []string
}

// start serves the upstream on 127.0.0.1 and returns it as connector id.
func (q *twoQuestions) start(t *testing.T, id string) *connectors.Connector {
	t.Helper()
	s := server.NewMCPServer("two-questions", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("two_questions"), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		first := server.ElicitationResponse(req.Params.InputResponses, "first")
		second := server.ElicitationResponse(req.Params.InputResponses, "second")
		if first != nil && second != nil {
			return mcp.NewToolResultText(fmt.Sprintf("first=%v second=%v", first.Content, second.Content)), nil
		}
		schema := map[string]any{"type": "object", "properties": map[string]any{"response": map[string]any{"type": "string"}}}
		return server.NewInputRequestBuilder("").
			Elicit("first", mcp.ElicitationParams{Message: "first?", RequestedSchema: schema}).
			Elicit("second", mcp.ElicitationParams{Message: "second?", RequestedSchema: schema}).
			ToolResult(), nil
	})
	h := server.NewStreamableHTTPServer(s,
		server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)),
		server.WithStreamableHTTPProtocolVersions(testupstream.LegacyVersions()...))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q.record(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/mcp")
	return &connectors.Connector{ID: id, URL: u, Timeout: 10 * time.Second}
}

// record notes the answer a posted JSON-RPC response carries, if any.
func (q *twoQuestions) record(body []byte) {
	var msg struct {
		Method string `json:"method"`
		Result struct {
			Content struct {
				Response string `json:"response"`
			} `json:"content"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Method != "" || msg.Result.Content.Response == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.answers = append(q.answers, msg.Result.Content.Response)
}

// TestRelayParkedConcurrentQuestions checks a parked 2026-07-28 call whose
// legacy upstream asks two questions at once: run under -race, the two
// goroutines that put them to the agent must not race; each question is
// put to the agent once, under a key of its own, one per retry; and each
// answer reaches the upstream once, as the answer to its own question.
func TestRelayParkedConcurrentQuestions(t *testing.T) {
	up := &twoQuestions{}
	g := startGateway(t, []*connectors.Connector{up.start(t, "q")}, everyone)
	alice := newRaw(t, g.URL+"/connectors/q/mcp", agentHeader("alice", ""))
	alice.version = v20260728
	caps := map[string]any{mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}}}
	params := map[string]any{"name": "two_questions", "arguments": map[string]any{}, "_meta": caps}

	var keys, asked, given []string
	r := alice.call("tools/call", params)
	for round := 0; r.result != nil && bytes.Contains(r.result, []byte(`"input_required"`)); round++ {
		if round == 2 {
			t.Fatalf("a third question, after %v: %s", asked, r.result)
		}
		var ir struct {
			InputRequests map[string]mcp.InputRequest `json:"inputRequests"`
			RequestState  string                      `json:"requestState"`
		}
		decodeInto(t, r.result, &ir)
		if len(ir.InputRequests) != 1 {
			t.Fatalf("want one question per round, got %s", r.result)
		}
		retry := clone(params)
		retry["requestState"] = ir.RequestState
		responses := map[string]any{}
		for key, req := range ir.InputRequests {
			if req.Elicitation == nil {
				t.Fatalf("not an elicitation: %s", r.result)
			}
			answer := "re: " + req.Elicitation.Message
			keys, asked, given = append(keys, key), append(asked, req.Elicitation.Message), append(given, answer)
			responses[key] = map[string]any{"action": "accept", "content": map[string]any{"response": answer}}
		}
		retry["inputResponses"] = responses
		r = alice.call("tools/call", retry)
	}
	if r.result == nil {
		t.Fatalf("the call after its answers: %d %s", r.status, r.body)
	}
	if want := "first=map[response:re: first?] second=map[response:re: second?]"; textOf(t, r.result) != want {
		t.Errorf("the upstream's result is %q, want %q", textOf(t, r.result), want)
	}
	sorted := slices.Sorted(slices.Values(asked))
	if !slices.Equal(sorted, []string{"first?", "second?"}) || len(keys) != 2 || keys[0] == keys[1] {
		t.Errorf("each question must be asked once under a key of its own: asked %v under %v", asked, keys)
	}
	// Each answer goes to the upstream once. The order they arrive in is
	// not checked: each is a response of its own, posted as soon as the
	// agent gives it, and JSON-RPC pairs it with its question by id (the
	// result above shows each paired right), not by when it comes.
	up.mu.Lock()
	defer up.mu.Unlock()
	if got := slices.Sorted(slices.Values(up.answers)); !slices.Equal(got, slices.Sorted(slices.Values(given))) {
		t.Errorf("the upstream got the answers %v, want each the agent gave once: %v", up.answers, given)
	}
}
