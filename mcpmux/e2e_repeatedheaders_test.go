package mcpmux_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestRepeatedHeaders checks that an MCP header sent more than once, which
// the gateway and a proxy in front of it could read differently (the
// first value against the last), is refused with 400 and an error naming
// it, in both eras and on POST, GET and DELETE; and so is a one-line list
// (as a proxy folds repeated lines) where a value never holds a comma.
func TestRepeatedHeaders(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, everyone)
	modern := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
	legacy := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	echo := map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}}
	modernCall, modernHeader := modern.request(1, "tools/call", echo)
	legacyCall, _ := legacy.request(1, "tools/call", echo)
	with := func(h http.Header, k string, v ...string) http.Header {
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		h[http.CanonicalHeaderKey(k)] = v
		return h
	}
	for _, tc := range []struct {
		name   string
		c      *rawClient
		method string
		body   []byte
		header http.Header
		named  string // the header the error must name
		code   int    // 0: a plain HTTP error, no JSON-RPC
	}{
		{"Mcp-Name twice, first as in the body", modern, "POST", modernCall, with(modernHeader, "Mcp-Name", "a_echo", "a_delete_everything"), "Mcp-Name", -32020},
		{"Mcp-Name twice, the same", modern, "POST", modernCall, with(modernHeader, "Mcp-Name", "a_echo", "a_echo"), "Mcp-Name", -32020},
		{"Mcp-Name folded", modern, "POST", modernCall, with(modernHeader, "Mcp-Name", "a_echo, a_delete_everything"), "Mcp-Name", -32020},
		{"Mcp-Method twice", modern, "POST", modernCall, with(modernHeader, "Mcp-Method", "tools/call", "tools/list"), "Mcp-Method", -32020},
		{"Mcp-Method folded", modern, "POST", modernCall, with(modernHeader, "Mcp-Method", "tools/call, tools/list"), "Mcp-Method", -32020},
		{"Mcp-Param-* twice", modern, "POST", modernCall, with(modernHeader, "Mcp-Param-Region", "eu", "us"), "Mcp-Param-Region", -32020},
		{"Mcp-Protocol-Version twice", modern, "POST", modernCall, with(modernHeader, "Mcp-Protocol-Version", v20260728, v20251125), "Mcp-Protocol-Version", -32600},
		{"Mcp-Protocol-Version twice, legacy first", legacy, "POST", legacyCall, with(nil, "Mcp-Protocol-Version", v20251125, v20260728), "Mcp-Protocol-Version", -32600},
		{"Mcp-Session-Id twice", legacy, "POST", legacyCall, with(nil, "Mcp-Session-Id", legacy.session, strings.Repeat("0", 32)), "Mcp-Session-Id", -32600},
		{"Mcp-Session-Id folded", legacy, "POST", legacyCall, with(nil, "Mcp-Session-Id", legacy.session+", "+legacy.session), "Mcp-Session-Id", -32600},
		{"Mcp-Session-Id twice on GET", legacy, "GET", nil, with(http.Header{"Accept": {"text/event-stream"}}, "Mcp-Session-Id", legacy.session, legacy.session), "Mcp-Session-Id", 0},
		{"Mcp-Session-Id twice on DELETE", legacy, "DELETE", nil, with(nil, "Mcp-Session-Id", legacy.session, legacy.session), "Mcp-Session-Id", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *rawReply
			if tc.body != nil {
				r = tc.c.do(tc.method, bytes.NewReader(tc.body), int64(len(tc.body)), tc.header)
			} else {
				r = tc.c.do(tc.method, nil, 0, tc.header)
			}
			if r.status != http.StatusBadRequest || r.code() != tc.code || !bytes.Contains(r.body, []byte(tc.named)) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	// Sent once, the same headers serve, and the session the refused
	// DELETE named is still open.
	if r := modern.post(modernCall, modernHeader); r.result == nil || textOf(t, r.result) != "hi" {
		t.Errorf("modern call: %d %s", r.status, r.body)
	}
	if r := legacy.post(legacyCall, nil); r.result == nil || textOf(t, r.result) != "hi" {
		t.Errorf("legacy call: %d %s", r.status, r.body)
	}
}

// TestNameWithComma checks that a comma inside one Mcp-Name value is not
// taken for a list: a resource URI may hold one, and the value is compared
// whole with the body.
func TestNameWithComma(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.ModernOnly, "a")
	const uri = "test://a/pair/1,2"
	ups["a"].MCP.AddResource(mcp.NewResource(uri, "pair"), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, Text: "one and two"}}, nil
	})
	g := startGateway(t, conns, everyone)
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
	body, h := c.request(1, "resources/read", map[string]any{"uri": uri})
	if h.Get("Mcp-Name") != uri {
		t.Fatalf("the raw client sent Mcp-Name %q", h.Get("Mcp-Name"))
	}
	r := c.post(body, h)
	var res struct {
		Contents []struct{ Text string } `json:"contents"`
	}
	if r.result == nil || json.Unmarshal(r.result, &res) != nil || len(res.Contents) != 1 || res.Contents[0].Text != "one and two" {
		t.Errorf("reading %s: %d %s", uri, r.status, r.body)
	}
}
