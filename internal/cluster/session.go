package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// legacyVersion is the protocol version of the legacy era's sessions.
const legacyVersion = mcp.ProtocolVersion20251125

// Session is a legacy MCP session (the initialize handshake, an
// Mcp-Session-Id) of one user, which any instance may be asked to serve.
type Session struct {
	// ID is the Mcp-Session-Id the gateway issued.
	ID string
	// User is whose session it is.
	User string
}

// Initialize opens a legacy session at the MCP endpoint at url as user:
// initialize, then notifications/initialized.
func Initialize(url, user string) (*Session, error) {
	params := map[string]any{
		"protocolVersion": legacyVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "cluster", "version": "1"},
	}
	s := &Session{User: user}
	resp, err := s.send(url, "initialize", params, true)
	if err != nil {
		return nil, err
	}
	if _, err := decodeRPC(resp); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if s.ID = resp.Header.Get("Mcp-Session-Id"); s.ID == "" {
		return nil, fmt.Errorf("initialize answered no Mcp-Session-Id")
	}
	resp, err = s.send(url, "notifications/initialized", nil, false)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusAccepted {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d: %s", resp.Status, resp.Body)
	}
	return s, nil
}

// Call sends a request of the session to the MCP endpoint at url. The
// answer is returned whatever its status, so that a test can see a 404.
func (s *Session) Call(url, method string, params map[string]any) (Response, error) {
	return s.send(url, method, params, true)
}

// ToolNames lists the session's tools through the MCP endpoint at url.
func (s *Session) ToolNames(url string) ([]string, error) {
	resp, err := s.Call(url, "tools/list", nil)
	if err != nil {
		return nil, err
	}
	out, err := decodeRPC(resp)
	if err != nil {
		return nil, fmt.Errorf("tools/list: %w", err)
	}
	return namesOf(out.Result)
}

// Delete ends the session at the MCP endpoint at url and returns the
// answer's status.
func (s *Session) Delete(url string) (int, error) {
	resp, err := Send(http.MethodDelete, url, s.User, nil, s.header())
	return resp.Status, err
}

// send posts one JSON-RPC message of the session: a request with an id,
// or a notification without.
func (s *Session) send(url, method string, params map[string]any, request bool) (Response, error) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	if request {
		msg["id"] = 1
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return Response{}, err
	}
	return Send(http.MethodPost, url, s.User, body, s.header())
}

// header is what every request of the session carries: the session id
// once there is one, and the version it negotiated.
func (s *Session) header() http.Header {
	h := http.Header{"Accept": {"application/json, text/event-stream"}}
	if s.ID != "" {
		h.Set("Mcp-Session-Id", s.ID)
		h.Set(mcp.HeaderProtocolVersion, legacyVersion)
	}
	return h
}
