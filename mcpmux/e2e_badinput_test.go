package mcpmux_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestBadInput sends malformed and hostile requests over raw HTTP and
// checks each answer's HTTP status and JSON-RPC code; then that the
// sessions used still work and that no goroutine is left behind. It does
// not run in parallel, so that the goroutine count is its own.
func TestBadInput(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// Cleanups run last-in first-out: this one runs after every server
	// and client of the test has closed.
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	const maxBody = 4096
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	rules := []grants.Rule{{Sources: []string{"user:alice", "user:bob"}, Tools: []string{"a/echo"}}}
	g := startGateway(t, conns, rules, func(o *mcpmux.Options) { o.MaxBody = maxBody })
	alice := agentHeader("alice", "")
	legacy := dialRaw(t, g.URL+"/mcp", alice, v20251125)
	old := dialRaw(t, g.URL+"/mcp", alice, v20250326)
	modern := dialRaw(t, g.URL+"/mcp", alice, v20260728)

	echo := map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}}
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"message":"` + strings.Repeat("x", maxBody) + `"}}}`
	modernCall, modernHeader := modern.request(1, "tools/call", echo)
	modernWith := func(k, v string) http.Header {
		h := modernHeader.Clone()
		h[http.CanonicalHeaderKey(k)] = []string{v}
		return h
	}
	metaBody := func(version string) []byte {
		return bytes.Replace(modernCall, []byte(`"`+v20260728+`"`), []byte(`"`+version+`"`), 1)
	}
	tests := []struct {
		name    string
		c       *rawClient
		method  string
		body    string
		chunked bool
		header  http.Header
		status  int
		code    int // 0: a plain HTTP error, no JSON-RPC
	}{
		{"too large", legacy, "POST", big, false, nil, 413, -32600},
		{"too large chunked", legacy, "POST", big, true, nil, 413, -32600},
		{"too large modern", modern, "POST", big, true, modernHeader, 413, -32600},
		{"not JSON", legacy, "POST", `{"jsonrpc":`, false, nil, 400, -32700},
		{"not JSON at all", legacy, "POST", `hello`, false, nil, 400, -32700},
		{"empty body", legacy, "POST", ``, false, nil, 400, -32700},
		{"duplicate name", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, false, nil, 400, -32600},
		{"name and Name", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","Name":"a_delete_everything"}}`, false, nil, 400, -32600},
		{"escaped duplicate", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","n\u0061me":"a_fail"}}`, false, nil, 400, -32600},
		{"method and METHOD", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}`, false, nil, 400, -32600},
		{"METHOD alone", legacy, "POST", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/list"}`, false, nil, 400, -32600},
		{"Name alone", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"a_echo"}}`, false, nil, 200, -32602},
		{"jsonrpc 1.0", legacy, "POST", `{"jsonrpc":"1.0","id":1,"method":"tools/list"}`, false, nil, 400, -32600},
		{"no jsonrpc", legacy, "POST", `{"id":1,"method":"tools/list"}`, false, nil, 400, -32600},
		{"id object", legacy, "POST", `{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}`, false, nil, 400, -32600},
		{"id array", legacy, "POST", `{"jsonrpc":"2.0","id":[1],"method":"tools/list"}`, false, nil, 400, -32600},
		{"method number", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":7}`, false, nil, 400, -32600},
		{"params array", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}`, false, nil, 200, -32602},
		{"params array modern", modern, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}`, false, modernWith("Mcp-Method", "tools/list"), 400, -32602},
		{"unknown method", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"admin/x","params":{}}`, false, nil, 200, -32601},
		{"unknown method case", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/Call","params":{}}`, false, nil, 200, -32601},
		{"no session", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, http.Header{"Mcp-Session-Id": {""}}, 400, -32600},
		{"unknown session", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, http.Header{"Mcp-Session-Id": {strings.Repeat("0", 32)}}, 404, -32600},
		{"session of another user", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, http.Header{"X-Test-User": {"bob"}}, 404, -32600},
		{"session of another endpoint", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, nil, 404, -32600},
		{"GET modern", modern, "GET", ``, false, http.Header{"Accept": {"text/event-stream"}}, 405, 0},
		{"DELETE modern", modern, "DELETE", ``, false, nil, 405, 0},
		{"PUT", legacy, "PUT", `{}`, false, nil, 405, 0},
		{"Mcp-Method mismatch", modern, "POST", string(modernCall), false, modernWith("Mcp-Method", "tools/list"), 400, -32020},
		{"Mcp-Name mismatch", modern, "POST", string(modernCall), false, modernWith("Mcp-Name", "a_delete_everything"), 400, -32020},
		{"Mcp-Method missing", modern, "POST", string(modernCall), false, modernWith("Mcp-Method", ""), 400, -32020},
		{"Mcp-Name missing", modern, "POST", string(modernCall), false, modernWith("Mcp-Name", ""), 400, -32020},
		{"header version is not _meta's", modern, "POST", string(metaBody("2099-01-01")), false, modernHeader, 400, -32020},
		{"legacy header, modern _meta", modern, "POST", string(modernCall), false, modernWith("Mcp-Protocol-Version", v20251125), 400, -32020},
		{"modern header, no _meta", modern, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`, false, modernWith("Mcp-Method", "tools/list"), 400, -32602},
		{"modern unknown method", modern, "POST", `{"jsonrpc":"2.0","id":1,"method":"admin/x","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, false, modernWith("Mcp-Method", "admin/x"), 404, -32601},
		{"evil Origin", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, http.Header{"Origin": {"https://evil.example"}}, 403, 0},
		{"null Origin", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, http.Header{"Origin": {"null"}}, 403, 0},
		{"evil Origin modern", modern, "POST", string(modernCall), false, modernWith("Origin", "https://evil.example"), 403, 0},
		{"own Origin", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, http.Header{"Origin": {g.URL}}, 200, 0},
		{"no Origin", legacy, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, false, nil, 200, 0},
		{"batch on 2025-11-25", legacy, "POST", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, false, nil, 400, -32600},
		{"batch modern", modern, "POST", `[` + string(modernCall) + `]`, false, modernHeader, 400, -32600},
		{"empty batch", old, "POST", `[]`, false, nil, 400, -32600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			if tt.name == "session of another endpoint" {
				// The session belongs to /mcp, not to a connector's endpoint.
				c = &rawClient{t: t, url: g.URL + "/connectors/a/mcp", hc: legacy.hc, header: legacy.header, version: legacy.version, session: legacy.session}
			}
			var body io.Reader = strings.NewReader(tt.body)
			length := int64(len(tt.body))
			switch {
			case tt.chunked:
				body, length = io.MultiReader(strings.NewReader(tt.body)), -1
			case tt.method != "POST" && tt.body == "":
				body = nil
			}
			r := c.do(tt.method, body, length, tt.header)
			if r.status != tt.status || r.code() != tt.code {
				t.Errorf("got HTTP %d code %d, want HTTP %d code %d: %s", r.status, r.code(), tt.status, tt.code, r.body)
			}
			if tt.code == 0 && tt.status >= 400 && r.msg != nil {
				t.Errorf("a plain HTTP error came as JSON-RPC: %s", r.body)
			}
			if tt.code != 0 && r.err.Message == "" {
				t.Errorf("the error does not say what is wrong: %s", r.body)
			}
		})
	}

	t.Run("batch on 2025-03-26", func(t *testing.T) {
		// Each element is judged on its own: the denied call does not
		// spoil the allowed one, nor the other way round.
		r := old.post([]byte(`[`+
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"message":"ok"}}},`+
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a_delete_everything"}},`+
			`{"jsonrpc":"2.0","method":"notifications/progress","params":{}},`+
			`{"jsonrpc":"1.0","id":3,"method":"tools/list"}]`), nil)
		var answers []struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *rpcError       `json:"error"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &answers) != nil || len(answers) != 3 {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		if answers[0].ID != 1 || answers[0].Result == nil || textOf(t, answers[0].Result) != "ok" {
			t.Errorf("allowed call: %+v", answers[0])
		}
		if answers[1].ID != 2 || answers[1].Error == nil || answers[1].Error.Code != -32602 || !strings.Contains(answers[1].Error.Message, "not granted") {
			t.Errorf("denied call: %+v", answers[1])
		}
		if answers[2].ID != 3 || answers[2].Error == nil || answers[2].Error.Code != -32600 {
			t.Errorf("bad element: %+v", answers[2])
		}
	})

	// Nothing above killed a session.
	for _, c := range []*rawClient{legacy, old, modern} {
		if r := c.call("tools/call", echo); r.result == nil || textOf(t, r.result) != "hi" {
			t.Errorf("%s session after bad input: %s", c.version, r.body)
		}
	}
}
