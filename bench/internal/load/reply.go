package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// toolResult is the part of a tools/call result that says it failed.
type toolResult struct {
	IsError bool `json:"isError"`
}

// checkReply reports whether resp, whose body is body, is an HTTP 200 with
// a JSON-RPC result, either as JSON or as the last response on an event
// stream. When isCall is set, a tool result with isError is a failure too.
// It returns the result's nextCursor as sent (a JSON string), or nil.
func checkReply(resp *http.Response, body []byte, isCall bool) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	switch ct := mediaType(resp.Header); ct {
	case "application/json":
	case "text/event-stream":
		body = lastResponse(body)
		if body == nil {
			return nil, errors.New("the event stream holds no JSON-RPC response")
		}
	default:
		return nil, fmt.Errorf("unexpected Content-Type %q: %s", ct, snippet(body))
	}
	return checkMessage(body, isCall)
}

// mediaType returns the Content-Type without its parameters, lowercased.
// It is mime.ParseMediaType without the map that function allocates.
func mediaType(h http.Header) string {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// checkMessage checks one JSON-RPC response and returns its result's
// nextCursor, or nil. Only its envelope and the result's top level are
// read, and a tool result decoded: decoding a large tools/list would cost
// the client more CPU than the server spent producing it.
func checkMessage(msg []byte, isCall bool) ([]byte, error) {
	r, err := envelope(msg)
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the reply: %v: %s", err, snippet(msg))
	case r.rpcErr != nil:
		var e rpcError
		if err := json.Unmarshal(r.rpcErr, &e); err != nil {
			return nil, fmt.Errorf("decoding the error: %v: %s", err, snippet(r.rpcErr))
		}
		return nil, fmt.Errorf("JSON-RPC error %d: %s", e.Code, e.Message)
	case r.result == nil:
		return nil, fmt.Errorf("no result in the reply: %s", snippet(msg))
	case !isCall:
		return r.nextCursor, nil
	}
	var tr toolResult
	if err := json.Unmarshal(r.result, &tr); err != nil {
		return nil, fmt.Errorf("decoding the tool result: %v", err)
	}
	if tr.IsError {
		return nil, fmt.Errorf("tool error: %s", snippet(r.result))
	}
	return nil, nil
}

// lastResponse returns the data of the last event on an SSE stream that
// is a JSON-RPC response (it has an id), skipping notifications and
// requests. Multi-line data is joined with newlines, as the SSE spec says.
func lastResponse(stream []byte) []byte {
	var last []byte
	for event := range bytes.SplitSeq(bytes.ReplaceAll(stream, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		data := eventData(event)
		if data == nil {
			continue
		}
		// A response has a result or an error; a request or a
		// notification has neither.
		if r, err := envelope(data); err == nil && (r.result != nil || r.rpcErr != nil) {
			last = data
		}
	}
	return last
}

// eventData joins the data lines of one SSE event.
func eventData(event []byte) []byte {
	var data []byte
	for line := range bytes.SplitSeq(event, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		if data != nil {
			data = append(data, '\n')
		}
		data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
	}
	return data
}

// snippet shortens b for an error message.
func snippet(b []byte) string {
	const max = 160
	b = bytes.TrimSpace(b)
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
