package mcpmux_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/caddy-mcpgate/connectors"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// statelessPaths are the agent endpoints every stateless rule holds on:
// the aggregated one and a connector's own.
var statelessPaths = []string{"/mcp", "/connectors/a/mcp"}

// TestModernRemovedMethods: at 2026-07-28 initialize, ping and
// logging/setLevel are removed methods (SEP-2575), answered as any method
// the server does not implement: HTTP 404 with JSON-RPC -32601
// (Streamable HTTP, "Protocol Version Header"). A 2026-07-28 initialize
// opens no legacy session.
func TestModernRemovedMethods(t *testing.T) {
	t.Parallel()
	g := statelessGateway(t)
	for _, path := range statelessPaths {
		c := dialRaw(t, g.URL+path, agentHeader("alice", ""), v20260728)
		for _, tc := range []struct {
			method string
			params any
		}{
			{"initialize", map[string]any{"protocolVersion": v20260728, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "raw", "version": "1"}}},
			{"ping", nil},
			{"logging/setLevel", map[string]any{"level": "debug"}},
		} {
			r := c.call(tc.method, tc.params)
			if r.status != http.StatusNotFound || r.code() != -32601 || r.err.Message == "" {
				t.Errorf("%s %s: got HTTP %d code %d, want HTTP 404 code -32601: %s", path, tc.method, r.status, r.code(), r.body)
			}
			if sid := r.header.Get("Mcp-Session-Id"); sid != "" {
				t.Errorf("%s %s: a 2026-07-28 request opened session %q", path, tc.method, sid)
			}
		}
		// The endpoint still serves the era's methods.
		c.result("tools/list", nil)
	}
}

// TestLegacyEraPingAndSetLevel: the legacy era still answers ping and
// logging/setLevel with an empty result, on both endpoints.
func TestLegacyEraPingAndSetLevel(t *testing.T) {
	t.Parallel()
	g := statelessGateway(t)
	for _, path := range statelessPaths {
		for _, version := range []string{v20250326, v20251125} {
			c := dialRaw(t, g.URL+path, agentHeader("alice", ""), version)
			for _, method := range []string{"ping", "logging/setLevel"} {
				var params any
				if method == "logging/setLevel" {
					params = map[string]any{"level": "debug"}
				}
				r := c.call(method, params)
				if r.status != http.StatusOK || r.err != nil || string(r.result) != "{}" {
					t.Errorf("%s %s at %s: got HTTP %d %s, want 200 and {}", path, method, version, r.status, r.body)
				}
			}
		}
	}
}

// TestModernRequiredMeta: a 2026-07-28 request whose _meta lacks the
// client's capabilities, or holds them as anything but an object, is
// malformed: -32602 with HTTP 400 (Basic, "_meta", per-request protocol
// fields). A notification carries no capabilities and is accepted; a
// request for a method the gateway does not serve is 404 whatever its
// _meta.
func TestModernRequiredMeta(t *testing.T) {
	t.Parallel()
	g := statelessGateway(t)
	capsMember := []byte(`"` + mcp.MetaKeyClientCapabilities + `":{},`)
	for _, path := range statelessPaths {
		// A connector's own endpoint names its tools without the prefix.
		name := map[string]string{"/mcp": "a_echo", "/connectors/a/mcp": "echo"}[path]
		echo := map[string]any{"name": name, "arguments": map[string]any{"message": "hi"}}
		c := dialRaw(t, g.URL+path, agentHeader("alice", ""), v20260728)
		for _, tc := range []struct {
			method string
			params any
		}{
			{"tools/list", nil},
			{"tools/call", echo},
			{"server/discover", nil},
			{"subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}}},
		} {
			body, h := c.request(1, tc.method, tc.params)
			if !bytes.Contains(body, capsMember) {
				t.Fatalf("the request has no capabilities to leave out: %s", body)
			}
			without := bytes.Replace(body, capsMember, nil, 1)
			if r := c.post(without, h); r.status != http.StatusBadRequest || r.code() != -32602 || r.err.Message == "" {
				t.Errorf("%s %s without capabilities: got HTTP %d code %d, want 400 -32602: %s", path, tc.method, r.status, r.code(), r.body)
			}
			for _, bad := range []string{`null`, `"all"`, `[]`} {
				notObject := bytes.Replace(body, capsMember, []byte(`"`+mcp.MetaKeyClientCapabilities+`":`+bad+`,`), 1)
				if r := c.post(notObject, h); r.status != http.StatusBadRequest || r.code() != -32602 {
					t.Errorf("%s %s with capabilities %s: got HTTP %d code %d, want 400 -32602: %s", path, tc.method, bad, r.status, r.code(), r.body)
				}
			}
		}
		body, h := c.request(nil, "notifications/cancelled", map[string]any{"requestId": 7})
		if r := c.post(bytes.Replace(body, capsMember, nil, 1), h); r.status != http.StatusAccepted {
			t.Errorf("%s a notification without capabilities: got HTTP %d, want 202: %s", path, r.status, r.body)
		}
		body, h = c.request(1, "ping", nil)
		if r := c.post(bytes.Replace(body, capsMember, nil, 1), h); r.status != http.StatusNotFound || r.code() != -32601 {
			t.Errorf("%s removed ping without capabilities: got HTTP %d code %d, want 404 -32601: %s", path, r.status, r.code(), r.body)
		}
		// With them the same requests are served.
		c.result("tools/call", echo)
		c.result("server/discover", nil)
	}
}

// statelessGateway is a gateway with one connector, a, on an upstream
// of both eras, that alice may use.
func statelessGateway(t *testing.T) *gateway {
	t.Helper()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	rules := []grants.Rule{{Sources: []string{"user:alice"}, Tools: []string{"a/echo"}}}
	return startGateway(t, conns, rules)
}

// TestModernLogLevel: at 2026-07-28 the log level is per request
// (SEP-2575): a request that asks for none gets no notifications/message,
// even from an upstream that sends them anyway; one that asks for a level
// has it passed to the upstream and gets the messages at that level or
// above. A level that is not a LoggingLevel is -32602, HTTP 400.
func TestModernLogLevel(t *testing.T) {
	t.Parallel()
	up, levels := startChatty(t)
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn := &connectors.Connector{ID: "chat", URL: u, Timeout: 2 * time.Second}
	g := startGateway(t, []*connectors.Connector{conn}, everyone)
	for _, path := range []string{"/mcp", "/connectors/chat/mcp"} {
		name := map[string]string{"/mcp": "chat_chatty", "/connectors/chat/mcp": "chatty"}[path]
		c := dialRaw(t, g.URL+path, agentHeader("alice", ""), v20260728)
		for _, tc := range []struct {
			level string // asked for; "" asks for none
			want  []string
		}{
			{"", nil},
			{"debug", []string{"debug", "error"}},
			{"warning", []string{"error"}},
		} {
			tag := path + " " + tc.level
			params := map[string]any{"name": name, "arguments": map[string]any{"tag": tag}}
			if tc.level != "" {
				params["_meta"] = map[string]any{mcp.MetaKeyLogLevel: tc.level}
			}
			r := c.call("tools/call", params)
			if r.status != http.StatusOK || r.result == nil {
				t.Fatalf("%s level %q: HTTP %d %s", path, tc.level, r.status, r.body)
			}
			if got := logLevels(t, r.notes, tag); !slices.Equal(got, tc.want) {
				t.Errorf("%s level %q: got log messages at %v, want %v", path, tc.level, got, tc.want)
			}
			if got := <-levels; got != tc.level {
				t.Errorf("%s level %q: the upstream was asked for level %q", path, tc.level, got)
			}
		}
		for _, bad := range []any{"loud", 3, nil} {
			r := c.call("tools/call", map[string]any{"name": name, "_meta": map[string]any{mcp.MetaKeyLogLevel: bad}})
			if r.status != http.StatusBadRequest || r.code() != -32602 {
				t.Errorf("%s level %v: got HTTP %d code %d, want 400 -32602: %s", path, bad, r.status, r.code(), r.body)
			}
		}
	}
}

// logLevels are the levels of the log messages among notes that carry
// tag: mcp-go may write a notification on another request's stream.
func logLevels(t *testing.T, notes []json.RawMessage, tag string) []string {
	t.Helper()
	var out []string
	for _, n := range notes {
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Level string `json:"level"`
				Data  string `json:"data"`
			} `json:"params"`
		}
		if err := json.Unmarshal(n, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Method == "notifications/message" && msg.Params.Data == tag {
			out = append(out, msg.Params.Level)
		}
	}
	return out
}

// startChatty serves an MCP upstream of both eras whose one tool, chatty,
// sends a debug and an error log message whatever level was asked for,
// as a careless server would, with the call's tag as data, and reports on
// levels the level its request asked for ("" for none).
func startChatty(t *testing.T) (*httptest.Server, <-chan string) {
	t.Helper()
	levels := make(chan string, 16)
	written := make(chan struct{}, 16)
	s := server.NewMCPServer("chatty", "1", server.WithLogging(), server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("chatty", mcp.WithString("tag")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		level := ""
		if info := server.RequestProtocolInfoFromContext(ctx); info != nil {
			level = string(info.LogLevel)
		}
		levels <- level
		for _, l := range []string{"debug", "error"} {
			err := server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": l, "logger": "chatty", "data": req.GetString("tag", "")})
			if err != nil {
				return nil, err
			}
		}
		// mcp-go drops a notification not yet written when the handler
		// returns (see testupstream's delivery.go): answer once both are
		// on the wire.
		for range 2 {
			select {
			case <-written:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return mcp.NewToolResultText("done"), nil
	})
	h := server.NewStreamableHTTPServer(s, server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&logWatch{ResponseWriter: w, written: written}, r)
	}))
	t.Cleanup(srv.Close)
	return srv, levels
}

// logWatch passes a response through and reports each log message in it
// once a flush has handed it to the connection.
type logWatch struct {
	http.ResponseWriter
	written chan<- struct{}
	pending int
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.pending += bytes.Count(p, []byte(`"notifications/message"`))
	return w.ResponseWriter.Write(p)
}

func (w *logWatch) Flush() {
	if http.NewResponseController(w.ResponseWriter).Flush() != nil {
		return
	}
	for ; w.pending > 0; w.pending-- {
		w.written <- struct{}{}
	}
}

func (w *logWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestModernMissingClientCapability: an upstream's input-required result
// that asks for input the agent's request did not declare it can give is
// refused with -32021 and HTTP 400, data.requiredCapabilities naming what
// is missing (Basic, "_meta"; Multi Round-Trip Requests: a server must not
// send undeclared input requests). Declared, the result reaches the agent.
func TestModernMissingClientCapability(t *testing.T) {
	t.Parallel()
	up := startAsker(t)
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn := &connectors.Connector{ID: "ask", URL: u, Timeout: 2 * time.Second}
	g := startGateway(t, []*connectors.Connector{conn}, everyone)
	form := map[string]any{"elicitation": map[string]any{}}
	tests := []struct {
		kind     string
		declared map[string]any
		missing  string // the requiredCapabilities wanted, "" for none missing
	}{
		{"form", map[string]any{}, `{"elicitation":{"form":{}}}`},
		{"form", form, ""},
		{"form", map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}, `{"elicitation":{"form":{}}}`},
		{"url", form, `{"elicitation":{"url":{}}}`},
		{"url", map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}, ""},
		{"sampling", form, `{"sampling":{}}`},
		{"sampling", map[string]any{"sampling": map[string]any{}}, ""},
		{"roots", map[string]any{}, `{"roots":{}}`},
		{"roots", map[string]any{"roots": map[string]any{}}, ""},
	}
	for _, path := range []string{"/mcp", "/connectors/ask/mcp"} {
		name := map[string]string{"/mcp": "ask_ask", "/connectors/ask/mcp": "ask"}[path]
		c := dialRaw(t, g.URL+path, agentHeader("alice", ""), v20260728)
		for _, tc := range tests {
			r := c.call("tools/call", map[string]any{
				"name": name, "arguments": map[string]any{"kind": tc.kind},
				"_meta": map[string]any{mcp.MetaKeyClientCapabilities: tc.declared},
			})
			if tc.missing == "" {
				if r.status != http.StatusOK || !bytes.Contains(r.result, []byte(`"resultType":"input_required"`)) {
					t.Errorf("%s %s with %v: got HTTP %d %s, want the input-required result", path, tc.kind, tc.declared, r.status, r.body)
				}
				continue
			}
			var data struct {
				Required json.RawMessage `json:"requiredCapabilities"`
			}
			if r.status != http.StatusBadRequest || r.code() != -32021 || json.Unmarshal(r.err.Data, &data) != nil || string(data.Required) != tc.missing {
				t.Errorf("%s %s with %v: got HTTP %d %s, want 400 -32021 requiring %s", path, tc.kind, tc.declared, r.status, r.body, tc.missing)
			}
		}
	}
}

// startAsker serves an MCP upstream of both eras whose one tool, ask,
// answers a 2026-07-28 call with an input-required result asking for one
// input of its kind argument (form or url elicitation, sampling, roots),
// whatever the request declared.
func startAsker(t *testing.T) *httptest.Server {
	t.Helper()
	s := server.NewMCPServer("asker", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("ask", mcp.WithString("kind")), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		b := server.NewInputRequestBuilder("state")
		switch req.GetString("kind", "") {
		case "form":
			b.Elicit("q", mcp.ElicitationParams{Message: "name?", RequestedSchema: map[string]any{"type": "object"}})
		case "url":
			b.Elicit("q", mcp.ElicitationParams{Mode: "url", Message: "go", URL: "https://example.com/x", ElicitationID: "e1"})
		case "sampling":
			b.Sample("q", mcp.CreateMessageParams{MaxTokens: 5})
		case "roots":
			b.Roots("q")
		}
		return b.ToolResult(), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler))))
	t.Cleanup(srv.Close)
	return srv
}
