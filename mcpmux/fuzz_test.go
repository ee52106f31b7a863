package mcpmux

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// FuzzMembers checks the raw member splicer against encoding/json on every
// text strictjson accepts: it must find the same members, and a replaced
// member must read back as the new value with the rest unchanged.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`, `{}`, ` { "name" : "x" , "b" : [1,{"name":2}] } `, `{"n\u0061me":"x"}`,
		`{"a":"}{\"","b":{"c":[]}}`, `[1]`, `"s"`, `{"a":{"b":{"c":{}}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkJSON(data) != nil {
			return
		}
		var want map[string]json.RawMessage
		isObject := json.Unmarshal(data, &want) == nil && bytes.TrimSpace(data)[0] == '{'
		got := map[string]json.RawMessage{}
		err := members(data, func(key string, v span) bool {
			got[key] = data[v.start:v.end]
			return true
		})
		if (err == nil) != isObject {
			t.Fatalf("members error %v, encoding/json object %v", err, isObject)
		}
		if !isObject {
			return
		}
		for k, v := range want {
			if !bytes.Equal(bytes.TrimSpace(v), got[k]) {
				t.Fatalf("member %q: got %s, want %s", k, got[k], v)
			}
		}
		next, err := setMember(data, "name", []byte(`"fuzzed"`))
		if err != nil {
			t.Fatal(err)
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(next, &after); err != nil {
			t.Fatalf("setMember made invalid JSON %s: %v", next, err)
		}
		if string(after["name"]) != `"fuzzed"` || len(after) != len(want)+boolInt(want["name"] == nil) {
			t.Fatalf("setMember(%s) = %s", data, next)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzServePost posts arbitrary bodies to a gateway with no upstreams: it
// must never panic, and always answer with JSON.
func FuzzServePost(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, `[]`, `{}`, `null`, `{"jsonrpc":"2.0","id":{},"method":"x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_b","name":"c"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"mcpgate://a/b"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a_p"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	policy, _ := grants.New([]grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}})
	m, err := New(Options{Policy: policy, MaxBody: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	f.Fuzz(func(t *testing.T, body []byte, modern bool) {
		r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(body))
		r.Header.Set("Accept", "application/json, text/event-stream")
		if modern {
			r.Header.Set("Mcp-Protocol-Version", "2026-07-28")
			r.Header.Set("Mcp-Method", "tools/list")
		}
		w := httptest.NewRecorder()
		m.ServeMCP(w, r, grants.Caller{ID: "fuzz"}, "")
		if w.Code == http.StatusAccepted {
			return
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%d answer is not JSON: %q", w.Code, w.Body.Bytes())
		}
	})
}

// FuzzMatchTemplate holds the template matcher to the old backtracking one
// on inputs small enough for it, and to its bound on steps.
func FuzzMatchTemplate(f *testing.F) {
	for _, seed := range [][2]string{
		{"test://a/items/{id}", "test://a/items/7"}, {"file:///r/{+dir}/{+file}.txt", "file:///r/a/b/c.txt"},
		{"{a}{b}{c}", "a/b"}, {"{+a}/{b}", "x/y/z"}, {"{a}aab{b}", "aaab"}, {"a{b", "a{b"},
		{"a}{b}", "a}x"}, {"a{b{c}d", "axd"}, {"x{a}y{b}z", "xyz"}, {"a{?q}{#f}", "a?x#y"}, {"{}", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, uri string) {
		// The old matcher is exponential in the number of expressions.
		if len(uri) > 24 || len(tmpl) > 32 || strings.Count(tmpl, "{") > 6 {
			return
		}
		m := templateMatcher{ctx: context.Background()}
		got, err := m.match(tmpl, uri)
		if err != nil {
			t.Fatal(err)
		}
		if want := backtrackMatch(tmpl, uri); got != want {
			t.Fatalf("match(%q, %q) = %v, the old matcher %v", tmpl, uri, got, want)
		}
		if m.steps > stepBound(tmpl, uri) {
			t.Fatalf("match(%q, %q) took %d steps, over %d", tmpl, uri, m.steps, stepBound(tmpl, uri))
		}
	})
}
