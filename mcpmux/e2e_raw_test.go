package mcpmux_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// The protocol versions the raw client speaks.
const (
	v20250326 = mcp.ProtocolVersion20250326
	v20251125 = mcp.ProtocolVersion20251125
	v20260728 = mcp.ProtocolVersion20260728
)

// rawEras are the agent eras, as the raw client names them by version.
var rawEras = []struct {
	Name    string
	version string
}{
	{"legacy", v20251125},
	{"modern", v20260728},
}

// rawClient speaks MCP over plain net/http, for what an SDK client hides:
// the exact bytes, the HTTP status, and malformed input. It talks to the
// gateway as an agent or to an upstream directly.
type rawClient struct {
	t       testing.TB
	url     string
	hc      *http.Client
	header  http.Header // sent with every request
	version string      // the protocol version in use
	session string      // the legacy session, once initialized
	nextID  atomic.Int64
}

// rpcError is a JSON-RPC error object as the raw client reads it.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// rawReply is one HTTP exchange as the raw client saw it.
type rawReply struct {
	status int
	header http.Header
	body   []byte            // the whole HTTP body
	msg    json.RawMessage   // the JSON-RPC response, when there is one
	result json.RawMessage   // its result
	errRaw json.RawMessage   // its error, raw
	err    *rpcError         // its error, decoded
	notes  []json.RawMessage // notifications that came before it on an SSE stream
}

// agentHeader is what an agent acting as user in groups sends: the
// caller headers of the test harness and its own secrets.
func agentHeader(user, groups string) http.Header {
	h := http.Header{}
	h.Set("X-Test-User", user)
	if groups != "" {
		h.Set("X-Test-Groups", groups)
	}
	h.Set("Authorization", "Bearer "+agentSecret)
	h.Set("Cookie", "session="+agentCookie)
	return h
}

// newRaw returns a raw client for url that has not connected. It owns its
// transport, so that no idle connection outlives the test.
func newRaw(t testing.TB, url string, header http.Header) *rawClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	if header == nil {
		header = http.Header{}
	}
	return &rawClient{t: t, url: url, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}, header: header}
}

// dialRaw connects a raw client on version: a legacy version runs the
// initialize handshake, 2026-07-28 needs none.
func dialRaw(t testing.TB, url string, header http.Header, version string) *rawClient {
	t.Helper()
	c := newRaw(t, url, header)
	c.version = version
	if !c.modern() {
		c.handshake()
	}
	return c
}

// modern reports whether the client speaks 2026-07-28.
func (c *rawClient) modern() bool { return mcp.IsModernProtocol(c.version) }

// handshake runs initialize and notifications/initialized by hand.
func (c *rawClient) handshake() {
	c.t.Helper()
	version := c.version
	c.version = ""
	r := c.call("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "raw", "version": "1"},
	})
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if r.status != http.StatusOK || r.err != nil || json.Unmarshal(r.result, &res) != nil {
		c.t.Fatalf("initialize at %s: %d %s", c.url, r.status, r.body)
	}
	if res.ProtocolVersion != version {
		c.t.Fatalf("initialize at %s: negotiated %s, want %s", c.url, res.ProtocolVersion, version)
	}
	c.version, c.session = version, r.header.Get(mcp.HeaderSessionID)
	if c.session == "" {
		c.t.Fatalf("initialize at %s: no session id", c.url)
	}
	if r := c.notify("notifications/initialized", nil); r.status != http.StatusAccepted {
		c.t.Fatalf("notifications/initialized at %s: %d %s", c.url, r.status, r.body)
	}
}

// request builds a request's body and headers in the client's era: a
// 2026-07-28 request carries the protocol _meta and the Mcp-Method and
// Mcp-Name headers.
func (c *rawClient) request(id any, method string, params any) ([]byte, http.Header) {
	c.t.Helper()
	p := map[string]any{}
	if params != nil {
		raw, err := json.Marshal(params)
		if err != nil {
			c.t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			c.t.Fatal(err)
		}
	}
	if p == nil { // params was a nil map
		p = map[string]any{}
	}
	h := http.Header{}
	if c.modern() {
		meta, _ := p["_meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		meta[mcp.MetaKeyProtocolVersion] = c.version
		meta[mcp.MetaKeyClientInfo] = map[string]any{"name": "raw", "version": "1"}
		if _, set := meta[mcp.MetaKeyClientCapabilities]; !set {
			meta[mcp.MetaKeyClientCapabilities] = map[string]any{}
		}
		p["_meta"] = meta
	}
	rawParams, _ := json.Marshal(p)
	for k, v := range mcp.StandardHeaders(c.version, mcp.MCPMethod(method), rawParams) {
		h.Set(k, v)
	}
	env := map[string]any{"jsonrpc": "2.0", "method": method, "params": json.RawMessage(rawParams)}
	if id != nil {
		env["id"] = id
	}
	body, _ := json.Marshal(env)
	return body, h
}

// call sends a request and returns the exchange.
func (c *rawClient) call(method string, params any) *rawReply {
	c.t.Helper()
	body, h := c.request(c.nextID.Add(1), method, params)
	return c.post(body, h)
}

// notify sends a notification.
func (c *rawClient) notify(method string, params any) *rawReply {
	c.t.Helper()
	body, h := c.request(nil, method, params)
	return c.post(body, h)
}

// result calls and fails the test unless the answer is a result.
func (c *rawClient) result(method string, params any) json.RawMessage {
	c.t.Helper()
	r := c.call(method, params)
	if r.result == nil {
		c.t.Fatalf("%s %v at %s: %d %s", method, params, c.url, r.status, r.body)
	}
	return r.result
}

// post sends body as is, with the client's headers and then extra, where
// an empty value removes a header.
func (c *rawClient) post(body []byte, extra http.Header) *rawReply {
	c.t.Helper()
	return c.do(http.MethodPost, bytes.NewReader(body), int64(len(body)), extra)
}

// sentEmpty, as an extra header's value, sends the header with an empty
// value; "" leaves the header out.
const sentEmpty = "\x00sent empty"

// do sends one HTTP request; length -1 sends a chunked body.
func (c *rawClient) do(method string, body io.Reader, length int64, extra http.Header) *rawReply {
	c.t.Helper()
	resp, err := c.hc.Do(c.newRequest(method, body, length, extra))
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, c.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading: %v", method, c.url, err)
	}
	return parseRawReply(c.t, resp, data)
}

// newRequest builds one HTTP request with the client's headers, its
// session and version, and then extra, where an empty value removes a
// header.
func (c *rawClient) newRequest(method string, body io.Reader, length int64, extra http.Header) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.ContentLength = length
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.version != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, c.version)
	}
	if c.session != "" {
		req.Header.Set(mcp.HeaderSessionID, c.session)
	}
	for k, v := range extra {
		switch {
		case len(v) == 0 || v[0] == "":
			req.Header.Del(k)
		case v[0] == sentEmpty:
			req.Header[http.CanonicalHeaderKey(k)] = []string{""}
		default:
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	// Go sends req.Host, never a Host header.
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	return req
}

// parseRawReply reads a JSON or SSE answer.
func parseRawReply(t testing.TB, resp *http.Response, data []byte) *rawReply {
	t.Helper()
	r := &rawReply{status: resp.StatusCode, header: resp.Header, body: data}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var msgs []json.RawMessage
	switch {
	case mediaType == "text/event-stream":
		msgs = sseMessages(data)
	case len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] == '{':
		msgs = []json.RawMessage{bytes.TrimSpace(data)}
	}
	for _, m := range msgs {
		var env struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Result  json.RawMessage `json:"result"`
			Error   json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(m, &env); err != nil {
			t.Fatalf("undecodable message %s: %v", m, err)
		}
		if env.JSONRPC == "" {
			continue // a plain HTTP error
		}
		if env.Method != "" {
			r.notes = append(r.notes, m)
			continue
		}
		r.msg, r.result, r.errRaw = m, env.Result, env.Error
		if env.Error != nil {
			r.err = &rpcError{}
			if err := json.Unmarshal(env.Error, r.err); err != nil {
				t.Fatalf("undecodable error %s: %v", env.Error, err)
			}
		}
	}
	return r
}

// sseMessages returns the data of every event in an SSE body.
func sseMessages(data []byte) []json.RawMessage {
	var out []json.RawMessage
	var cur []byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
		case bytes.HasPrefix(line, []byte("data:")):
			cur = append(cur, bytes.TrimPrefix(line[5:], []byte(" "))...)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// code returns the JSON-RPC error code, or 0 for a result.
func (r *rawReply) code() int {
	if r.err == nil {
		return 0
	}
	return r.err.Code
}

// decode unmarshals raw JSON keeping numbers exact, so that a comparison
// sees every digit an upstream sent.
func decode(t testing.TB, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

// sameJSON reports whether two JSON texts mean the same value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(decode(t, a), decode(t, b))
}

// listed returns the names (or uris, or uriTemplates) in a list result.
func listed(t testing.TB, result json.RawMessage, field, key string) []string {
	t.Helper()
	var out []string
	for _, e := range entriesOf(t, result, field) {
		var m map[string]any
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatal(err)
		}
		s, _ := m[key].(string)
		out = append(out, s)
	}
	return out
}

// entriesOf returns the raw entries of a list result.
func entriesOf(t testing.TB, result json.RawMessage, field string) []json.RawMessage {
	t.Helper()
	var res map[string]json.RawMessage
	if err := json.Unmarshal(result, &res); err != nil {
		t.Fatalf("list result %s: %v", result, err)
	}
	var out []json.RawMessage
	if err := json.Unmarshal(res[field], &out); err != nil {
		t.Fatalf("list result %s has no %s array", result, field)
	}
	return out
}

// textOf returns the text of the first content of a call, prompt or read
// result.
func textOf(t testing.TB, result json.RawMessage) string {
	t.Helper()
	var res struct {
		Content  []struct{ Text string } `json:"content"`
		Contents []struct{ Text string } `json:"contents"`
		Messages []struct {
			Content struct{ Text string } `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(result, &res); err != nil {
		t.Fatalf("result %s: %v", result, err)
	}
	switch {
	case len(res.Content) > 0:
		return res.Content[0].Text
	case len(res.Contents) > 0:
		return res.Contents[0].Text
	case len(res.Messages) > 0:
		return res.Messages[0].Content.Text
	}
	t.Fatalf("result %s has no text", result)
	return ""
}

// upstreamAuth is the bearer token every test upstream wants.
const upstreamAuth = "up-token"

// bearer is connector auth with the upstreams' token.
var bearer = connectors.Auth{Type: connectors.AuthBearer, Token: upstreamAuth}

// startUpstreams starts one upstream per name, each with its own catalog
// (resource URIs carry the name), behind the bearer token, and returns
// them with a connector for each, whose id is the name.
func startUpstreams(t testing.TB, era testupstream.Era, names ...string) (map[string]*testupstream.Server, []*connectors.Connector) {
	t.Helper()
	ups := map[string]*testupstream.Server{}
	var conns []*connectors.Connector
	for _, n := range names {
		up := testupstream.StartT(t, testupstream.Options{Name: n, Era: era, BearerToken: upstreamAuth})
		ups[n] = up
		conns = append(conns, testConnector(t, n, up, bearer))
	}
	return ups, conns
}

// direct dials an upstream without the gateway, in the era the gateway
// itself uses with it: 2026-07-28 when the upstream serves it.
func direct(t testing.TB, up *testupstream.Server, era testupstream.Era) *rawClient {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + upstreamAuth}}
	if era == testupstream.LegacyOnly {
		return dialRaw(t, up.URL, h, v20251125)
	}
	return dialRaw(t, up.URL, h, v20260728)
}

// everyone grants every caller every item of every connector.
var everyone = []grants.Rule{{Sources: []string{"*"}, Connectors: []string{"*"}}}

// countMethod counts the POST bodies an upstream received for method.
func countMethod(up *testupstream.Server, method string) int {
	n := 0
	for _, r := range up.Requests() {
		if r.Method == http.MethodPost && bytes.Contains(r.Body, []byte(`"method":`+strconv.Quote(method))) {
			n++
		}
	}
	return n
}

// eventually polls cond for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notGranted reports whether r is the gateway's refusal of an item.
func notGranted(r *rawReply) bool {
	return r.err != nil && r.err.Code == -32602 && strings.Contains(r.err.Message, "is not granted to you")
}

// decodeInto unmarshals raw into v or fails the test.
func decodeInto(t testing.TB, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

// bytesContainsAll reports whether b contains every one of parts.
func bytesContainsAll(b []byte, parts ...string) bool {
	for _, p := range parts {
		if !bytes.Contains(b, []byte(p)) {
			return false
		}
	}
	return true
}
