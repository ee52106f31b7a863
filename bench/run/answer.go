package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// answer is the size of an aggregated tools/list as an agent receives it:
// every page, following nextCursor.
type answer struct {
	Catalog string `json:"catalog"`
	Bytes   int64  `json:"bytes"` // the bodies of every page
	Tools   int    `json:"tools"`
	Pages   int    `json:"pages"`
}

// maxPages bounds the pages listAnswer follows, against a server whose
// cursor never ends.
const maxPages = 1000

// listAnswer opens a legacy session on url, lists every tool, page after
// page, and ends the session. It reads the replies in full, which the load
// generator avoids doing on its hot path.
func listAnswer(ctx context.Context, url string) (answer, error) {
	c := &probe{hc: &http.Client{Timeout: 30 * time.Second}, url: url}
	defer c.hc.CloseIdleConnections()
	if err := c.open(ctx); err != nil {
		return answer{}, err
	}
	defer c.close(ctx)
	var a answer
	cursor := ""
	for a.Pages < maxPages {
		params := "{}"
		if cursor != "" {
			b, _ := json.Marshal(map[string]string{"cursor": cursor}) // a string always marshals
			params = string(b)
		}
		msg, n, err := c.call(ctx, `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":`+params+`}`)
		if err != nil {
			return a, fmt.Errorf("tools/list page %d: %w", a.Pages+1, err)
		}
		var page struct {
			Result struct {
				Tools      []json.RawMessage `json:"tools"`
				NextCursor string            `json:"nextCursor"`
			} `json:"result"`
		}
		if err := json.Unmarshal(msg, &page); err != nil {
			return a, fmt.Errorf("tools/list page %d: %w", a.Pages+1, err)
		}
		a.Pages++
		a.Bytes += n
		a.Tools += len(page.Result.Tools)
		if cursor = page.Result.NextCursor; cursor == "" {
			return a, nil
		}
	}
	return a, fmt.Errorf("tools/list: more than %d pages", maxPages)
}

// probe is a bare legacy MCP session for the few requests that are not
// load: it keeps no state but the session id.
type probe struct {
	hc      *http.Client
	url     string
	session string
}

// open runs the initialize handshake.
func (c *probe) open(ctx context.Context) error {
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpgate-bench","version":"1"}}}`
	resp, _, err := c.post(ctx, initialize)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if c.session = resp.Header.Get("Mcp-Session-Id"); c.session == "" {
		return errors.New("initialize: no Mcp-Session-Id in the reply")
	}
	if _, _, err := c.post(ctx, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	return nil
}

// call sends one request and returns its JSON-RPC response, taken from an
// event stream if it comes as one, and the size of the reply's body.
func (c *probe) call(ctx context.Context, body string) ([]byte, int64, error) {
	resp, b, err := c.post(ctx, body)
	if err != nil {
		return nil, 0, err
	}
	msg := b
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		msg = lastData(b)
	}
	var env struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &env); err != nil {
		return nil, 0, fmt.Errorf("reading the reply: %w", err)
	}
	if env.Error != nil {
		return nil, 0, fmt.Errorf("JSON-RPC error: %s", env.Error.Message)
	}
	return msg, int64(len(b)), nil
}

// lastData returns the data of the last event on an event stream.
func lastData(stream []byte) []byte {
	var last []byte
	for line := range bytes.Lines(stream) {
		if d, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:")); ok {
			last = bytes.TrimSpace(d)
		}
	}
	return last
}

// post sends body in the session and reads the whole reply, which must be
// a success.
func (c *probe) post(ctx context.Context, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	return resp, b, nil
}

// close ends the session with DELETE, best effort.
func (c *probe) close(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", c.session)
	if resp, err := c.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}
