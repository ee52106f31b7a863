package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The protocol revisions the sessions speak.
const (
	legacyVersion = "2025-11-25"
	modernVersion = "2026-07-28"
)

// modernMeta is the params._meta member of every 2026-07-28 request.
const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + modernVersion +
	`","io.modelcontextprotocol/clientInfo":{"name":"mcpgate-loadgen","version":"1"},` +
	`"io.modelcontextprotocol/clientCapabilities":{}}`

// initializeBody is the handshake request. Its id, 0, is never reused:
// the loop's ids start at 1.
const initializeBody = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` +
	legacyVersion + `","capabilities":{},"clientInfo":{"name":"mcpgate-loadgen","version":"1"}}}`

// initializedBody ends the handshake.
const initializedBody = `{"jsonrpc":"2.0","method":"notifications/initialized"}`

// session is one MCP session with one request in flight at a time. Only
// its own goroutine touches it.
type session struct {
	hc     *http.Client
	url    string
	header http.Header // the request headers, session id included
	prefix []byte      // the request body up to its id
	method []byte      // the body after its id, up to the params' members
	params []byte      // the params' members and the end of the body
	isCall bool
	modern bool
	nextID int64
	buf    bytes.Buffer // the last reply's body
}

// newSession returns a session that has not run its handshake.
func newSession(hc *http.Client, opts Options) *session {
	h := opts.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	s := &session{hc: hc, url: opts.URL, header: h, nextID: 1,
		isCall: opts.Method == MethodCall, modern: opts.Era == EraModern}
	s.prefix = []byte(`{"jsonrpc":"2.0","id":`)
	s.method = []byte(`,"method":"` + opts.Method + `","params":{`)
	s.params = []byte(s.members(opts.Tool) + `}}`)
	if s.modern {
		h.Set("Mcp-Protocol-Version", modernVersion)
		h.Set("Mcp-Method", opts.Method)
		if s.isCall {
			h.Set("Mcp-Name", opts.Tool)
		}
	}
	return s
}

// members returns the members of the request's params object.
func (s *session) members(tool string) string {
	var members []string
	if s.isCall {
		members = append(members, `"name":`+strconv.Quote(tool), `"arguments":{"message":"hello from loadgen"}`)
	}
	if s.modern {
		members = append(members, modernMeta)
	}
	return strings.Join(members, ",")
}

// handshake runs initialize and notifications/initialized, and keeps the
// session id that the server assigns. The modern era has no handshake.
func (s *session) handshake(ctx context.Context) error {
	if s.modern {
		return nil
	}
	s.header.Del("Mcp-Session-Id")
	s.header.Del("Mcp-Protocol-Version")
	resp, err := s.post(ctx, []byte(initializeBody))
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if _, err := checkReply(resp, s.buf.Bytes(), false); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		return fmt.Errorf("initialize: no Mcp-Session-Id in the reply")
	}
	s.header.Set("Mcp-Session-Id", sid)
	s.header.Set("Mcp-Protocol-Version", legacyVersion)
	resp, err = s.post(ctx, []byte(initializedBody))
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("notifications/initialized: HTTP %d: %s", resp.StatusCode, snippet(s.buf.Bytes()))
	}
	return nil
}

// loop sends requests back to back until the deadline or ctx ends. A
// session the server has forgotten (404) counts as an error and is opened
// again.
func (s *session) loop(ctx context.Context, deadline time.Time, rec *recorder) {
	for ctx.Err() == nil {
		start := time.Now()
		if !start.Before(deadline) {
			return
		}
		status, err := s.request(ctx)
		rec.add(time.Since(start), err)
		if status != http.StatusNotFound {
			continue
		}
		if err := s.handshake(ctx); err != nil {
			rec.add(0, err)
		}
	}
}

// request sends one request and checks its reply; for tools/list, the
// whole list: it follows nextCursor page by page until a page has none,
// as a client must (Pagination), so that one request is one complete
// list however the server pages it. It returns the last HTTP status, 0
// when there was none.
func (s *session) request(ctx context.Context) (int, error) {
	var cursor []byte
	for page := 0; ; page++ {
		if page == maxPages {
			return http.StatusOK, fmt.Errorf("the list did not end within %d pages", maxPages)
		}
		resp, err := s.post(ctx, s.body(cursor))
		if err != nil {
			return 0, err
		}
		next, err := checkReply(resp, s.buf.Bytes(), s.isCall)
		if err != nil || next == nil {
			return resp.StatusCode, err
		}
		// Copied: the next reply overwrites the buffer it points into.
		cursor = append(cursor[:0], next...)
	}
}

// maxPages bounds the pages of one list, so that a server that hands out
// cursors forever fails the request instead of holding the session.
const maxPages = 1000

// body builds the next request's body, with the cursor (a JSON string, as
// the server sent it) when there is one. Its id is never reused.
func (s *session) body(cursor []byte) []byte {
	body := make([]byte, 0, len(s.prefix)+len(s.method)+len(cursor)+len(s.params)+32)
	body = append(body, s.prefix...)
	body = strconv.AppendInt(body, s.nextID, 10)
	body = append(body, s.method...)
	if cursor != nil {
		body = append(body, `"cursor":`...)
		body = append(body, cursor...)
		if s.params[0] != '}' {
			body = append(body, ',')
		}
	}
	body = append(body, s.params...)
	s.nextID++
	return body
}

// post sends body and reads the whole reply into s.buf. The returned
// response's body is already closed.
func (s *session) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = s.header
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	s.buf.Reset()
	if _, err := s.buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("reading the reply: %w", err)
	}
	return resp, nil
}

// ping sends a ping on the session and checks that it is answered.
func (s *session) ping(ctx context.Context) error {
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`, s.nextID)
	s.nextID++
	resp, err := s.post(ctx, body)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if _, err := checkReply(resp, s.buf.Bytes(), false); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// close ends the session with DELETE. A server that does not support it
// answers 405, which is fine.
func (s *session) close(ctx context.Context) {
	if s.header.Get("Mcp-Session-Id") == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.url, nil)
	if err != nil {
		return
	}
	req.Header = s.header
	if resp, err := s.hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
