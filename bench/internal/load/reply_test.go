package load

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestEnvelope(t *testing.T) {
	tests := []struct {
		msg, result, rpcErr, next string
		bad                       bool
	}{
		{msg: `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a\"}"}]}}`, result: `{"tools":[{"name":"a\"}"}]}`},
		{msg: ` { "id" : 1 , "error" : {"code":-32601,"message":"x"} } `, rpcErr: `{"code":-32601,"message":"x"}`},
		{msg: `{"jsonrpc":"2.0","id":1,"result":null}`, result: `null`},
		{msg: `{"jsonrpc":"2.0","method":"notifications/progress","params":{"result":1}}`},
		{msg: `{"id":1,"result":{"a":[1,2`, bad: true},
		{msg: `[{"id":1,"result":{}}]`, bad: true},
		{msg: `{"`, bad: true},
		{msg: ``, bad: true},
		// The cursor is the result's own, as sent; one nested deeper, or
		// in an escaped string, is not it.
		{msg: `{"id":1,"result":{"tools":[{"nextCursor":"no"}],"nextCursor":"b2s\u003d"}}`,
			result: `{"tools":[{"nextCursor":"no"}],"nextCursor":"b2s\u003d"}`, next: `"b2s\u003d"`},
		{msg: `{"id":1,"result":{"tools":[{"d":"\",\"nextCursor\":\"no"}]}}`, result: `{"tools":[{"d":"\",\"nextCursor\":\"no"}]}`},
		{msg: `{"id":1,"result":{"tools":[{"d":"a\\\\"}],"nextCursor":"x"}}`, result: `{"tools":[{"d":"a\\\\"}],"nextCursor":"x"}`, next: `"x"`},
		{msg: `{"id":1,"result":{"nextCursor":7}}`, bad: true},
		{msg: `{"id":1,"result":{"nextCursor":"x"`, bad: true},
	}
	for _, tt := range tests {
		r, err := envelope([]byte(tt.msg))
		if (err != nil) != tt.bad || !tt.bad && (string(r.result) != tt.result || string(r.rpcErr) != tt.rpcErr || string(r.nextCursor) != tt.next) {
			t.Errorf("envelope(%q) = %q, %q, %q, %v", tt.msg, r.result, r.rpcErr, r.nextCursor, err)
		}
	}
}

func TestSkipString(t *testing.T) {
	for _, s := range []string{`""`, `"a"`, `"\""`, `"\\"`, `"a\\\"b"`, `"\\\\"`, `"\u0022"`} {
		b := []byte(s + `,"next"`)
		if end := skipString(b, 0); end != len(s) {
			t.Errorf("skipString(%s) = %d, want %d", b, end, len(s))
		}
	}
	if end := skipString([]byte(`"open\"`), 0); end != len(`"open\"`) {
		t.Errorf("an unterminated string ends at %d", end)
	}
}

func TestCheckReply(t *testing.T) {
	sse := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n" +
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\n" + "data: \"result\":{\"content\":[]}}\n\n"
	tests := []struct {
		name, ct, body string
		status         int
		isCall         bool
		wantErr        string
	}{
		{"json result", "application/json", `{"id":1,"result":{"content":[]}}`, 200, true, ""},
		{"tool error", "application/json; charset=utf-8", `{"id":1,"result":{"isError":true}}`, 200, true, "tool error"},
		{"isError ignored for lists", "application/json", `{"id":1,"result":{"isError":true}}`, 200, false, ""},
		{"rpc error", "application/json", `{"id":1,"error":{"code":-32602,"message":"no such tool"}}`, 200, true, "-32602: no such tool"},
		{"sse result", "text/event-stream", sse, 200, true, ""},
		{"sse without response", "text/event-stream", "data: {\"method\":\"x\"}\n\n", 200, true, "no JSON-RPC response"},
		{"http error", "application/json", `{}`, 404, true, "HTTP 404"},
		{"other type", "text/plain", `hi`, 200, true, "Content-Type"},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {tt.ct}}}
		_, err := checkReply(resp, []byte(tt.body), tt.isCall)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// BenchmarkEnvelope reads a list of 500 small tools as the client does,
// to show what finding a reply's end and its nextCursor costs per byte.
func BenchmarkEnvelope(b *testing.B) {
	var list strings.Builder
	list.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"tools":[`)
	for i := range 500 {
		if i > 0 {
			list.WriteString(",")
		}
		fmt.Fprintf(&list, `{"annotations":{"readOnlyHint":true},"description":"Extra tool %d.","inputSchema":`+
			`{"properties":{"message":{"description":"what to say","type":"string"}},"type":"object"},"name":"up%d_tool-%03d"}`, i, i%10, i)
	}
	list.WriteString(`],"nextCursor":"eA"}}`)
	msg := []byte(list.String())
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if r, err := envelope(msg); err != nil || string(r.nextCursor) != `"eA"` {
			b.Fatal(r, err)
		}
	}
}
