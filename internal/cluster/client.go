package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Response is an HTTP answer, read whole.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response's header.
	Header http.Header
	// Body is the whole body.
	Body []byte
}

// Send sends a request to url as user (no Authorization when user
// is empty), with body as JSON when there is one and header's fields
// added, and reads the answer. Redirects are returned, not followed.
func Send(method, url, user string, body []byte, header http.Header) (Response, error) {
	req, err := http.NewRequest(method, url, bytesReader(body))
	if err != nil {
		return Response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.SetBasicAuth(user, Passwords[user])
	}
	resp, err := clients().Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("reading the answer to %s %s: %w", method, url, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// MustSend is Send that fails the test on a transport error.
func MustSend(t testing.TB, method, url, user string, body []byte, header http.Header) Response {
	t.Helper()
	resp, err := Send(method, url, user, body, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// bytesReader is body as a request body, or none when body is nil.
func bytesReader(body []byte) io.Reader {
	if body == nil {
		return nil
	}
	return bytes.NewReader(body)
}

// rpcResponse is a JSON-RPC response.
type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeRPC reads the JSON-RPC response out of an answer, which is JSON or
// an event stream whose last message is the response (notifications may
// come before it).
func decodeRPC(resp Response) (rpcResponse, error) {
	var out rpcResponse
	if resp.Status != http.StatusOK {
		return out, fmt.Errorf("HTTP %d: %s", resp.Status, resp.Body)
	}
	body := resp.Body
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/event-stream" {
		body = lastEvent(body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, fmt.Errorf("decoding %q: %w", resp.Body, err)
	}
	if out.Error != nil {
		return out, fmt.Errorf("JSON-RPC error %d: %s", out.Error.Code, out.Error.Message)
	}
	return out, nil
}

// lastEvent returns the data of an event stream's last event.
func lastEvent(stream []byte) []byte {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			last = []byte(strings.TrimSpace(data))
		}
	}
	return last
}

// modernVersion is the stateless protocol era: every request stands alone,
// so any instance may serve any one.
const modernVersion = mcp.ProtocolVersion20260728

// Modern sends one stateless MCP request of the 2026-07-28 era to the MCP
// endpoint at url as user and returns its result. params gets the _meta
// that era requires.
func Modern(url, user string, method string, params map[string]any) (json.RawMessage, error) {
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{
		mcp.MetaKeyProtocolVersion:    modernVersion,
		mcp.MetaKeyClientInfo:         map[string]any{"name": "cluster", "version": "1"},
		mcp.MetaKeyClientCapabilities: map[string]any{},
	}
	rawParams, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": json.RawMessage(rawParams)})
	if err != nil {
		return nil, err
	}
	h := http.Header{"Accept": {"application/json, text/event-stream"}, mcp.HeaderProtocolVersion: {modernVersion}}
	for k, v := range mcp.StandardHeaders(modernVersion, mcp.MCPMethod(method), rawParams) {
		h.Set(k, v)
	}
	resp, err := Send(http.MethodPost, url, user, body, h)
	if err != nil {
		return nil, err
	}
	out, err := decodeRPC(resp)
	return out.Result, err
}

// CallTool calls tool with args through the MCP endpoint at url as user,
// in the stateless era, and returns the result's text. A tool error is an
// error.
func CallTool(url, user, tool string, args map[string]any) (string, error) {
	raw, err := Modern(url, user, "tools/call", map[string]any{"name": tool, "arguments": args})
	if err != nil {
		return "", fmt.Errorf("calling %s: %w", tool, err)
	}
	var res mcp.CallToolResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", fmt.Errorf("calling %s: decoding %s: %w", tool, raw, err)
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError {
		return "", fmt.Errorf("calling %s: tool error: %s", tool, text)
	}
	return text, nil
}

// ToolNames lists the tools user sees through the MCP endpoint at url, in
// the stateless era.
func ToolNames(url, user string) ([]string, error) {
	raw, err := Modern(url, user, "tools/list", nil)
	if err != nil {
		return nil, fmt.Errorf("listing tools: %w", err)
	}
	return namesOf(raw)
}

// namesOf returns the names of a tools/list result's tools.
func namesOf(raw json.RawMessage) ([]string, error) {
	var res mcp.ListToolsResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("listing tools: decoding %s: %w", raw, err)
	}
	if res.NextCursor != "" {
		return nil, errors.New("listing tools: the list has more pages than this helper reads")
	}
	names := make([]string, 0, len(res.Tools))
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names, nil
}

// clients keeps one HTTP client for the tests' calls, so that connections
// are reused as an agent's would be, one per caller of a storm.
var clients = sync.OnceValue(func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{
		Transport: tr,
		Timeout:   60 * time.Second,
		// The consent tests read redirects rather than follow them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
})
