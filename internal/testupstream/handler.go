package testupstream

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// endpointPath is where mcp-go's handler is mounted.
const endpointPath = "/mcp"

// legacyVersions are the Streamable HTTP revisions that use the initialize
// handshake. 2024-11-05 is left out: it predates Streamable HTTP.
var legacyVersions = []string{
	mcp.ProtocolVersion20251125,
	mcp.ProtocolVersion20250618,
	mcp.ProtocolVersion20250326,
}

// LegacyVersions returns the revisions a LegacyOnly server serves. Given
// to server.WithStreamableHTTPProtocolVersions, they make mcp-go refuse a
// 2026-07-28 request, server/discover included, with
// UnsupportedProtocolVersion naming them, as a 2025-11-25 server would, and
// the client falls back to initialize.
func LegacyVersions() []string {
	return slices.Clone(legacyVersions)
}

// modernVersions are the stateless revisions, served without a handshake.
var modernVersions = []string{mcp.ProtocolVersion20260728}

// serve is the HTTP handler in front of mcp-go. It records the request
// first, so that tests also see the ones it refuses, then passes it through
// the guard, if any, to answer.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.join() {
		http.Error(w, "testupstream: server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.Done()

	body, err := readBody(r)
	if err != nil {
		http.Error(w, "testupstream: reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.record(r, body)
	if guard := s.guard.Load(); guard != nil {
		next := func(w http.ResponseWriter, r *http.Request) { s.answer(w, r, body) }
		(*guard)(http.HandlerFunc(next)).ServeHTTP(w, r)
		return
	}
	s.answer(w, r, body)
}

// answer applies the checks a real upstream would make before its SDK runs,
// then hands the request to it.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, body []byte) {
	switch {
	case r.URL.Path != endpointPath:
		http.NotFound(w, r)
	case !s.authorized(r.Header):
		s.unauthorized(w)
	case !s.pause(r.Context()):
		// The client gave up while the response was being delayed.
	case s.opts.Era == ModernOnly && refuseLegacy(w, r, body):
	default:
		s.forward(w, r, body)
	}
}

// join counts a request in flight, or reports false once Close has begun.
func (s *Server) join() bool {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// readBody reads a POST body and puts an equivalent reader back for mcp-go.
func readBody(r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// record keeps a copy of the request unless recording is off. The header is
// cloned so that the record cannot change if a handler edits the request.
func (s *Server) record(r *http.Request, body []byte) {
	if s.opts.NoRecord {
		return
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.recMu.Lock()
	s.requests = append(s.requests, req)
	s.recMu.Unlock()
}

// authorized checks the configured credentials. The comparisons are in
// constant time, as a real upstream's would be, even though the secrets
// here are test values.
func (s *Server) authorized(h http.Header) bool {
	if s.opts.BearerToken != "" {
		scheme, token, _ := strings.Cut(h.Get("Authorization"), " ")
		// RFC 9110 section 11.1: the scheme is case-insensitive.
		if !strings.EqualFold(scheme, "Bearer") || !equal(token, s.opts.BearerToken) {
			return false
		}
	}
	if s.opts.HeaderName != "" && !equal(h.Get(s.opts.HeaderName), s.opts.HeaderValue) {
		return false
	}
	return true
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// unauthorized answers 401. The Bearer challenge is sent only for bearer
// auth, so that an API-key upstream does not look like an OAuth resource.
func (s *Server) unauthorized(w http.ResponseWriter) {
	if s.opts.BearerToken != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="testupstream"`)
	}
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// pause applies the delay set by SetDelay. It reports false when the
// request was cancelled first.
func (s *Server) pause(ctx context.Context) bool {
	d := time.Duration(s.delay.Load())
	return d <= 0 || sleep(ctx, d)
}

// forward hands the request to mcp-go, rewriting the response when it is
// one mcp-go cannot produce in full (see splice.go). Every response is
// watched for progress notifications, whichever request's stream carries
// them (see delivery.go).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	pw := s.delivered.watch(w, r.Method)
	defer pw.finish()
	rewrite := rewriteFor(body)
	if rewrite == nil {
		s.streamable.ServeHTTP(pw, r)
		return
	}
	cw := &captureWriter{header: pw.Header()}
	s.streamable.ServeHTTP(cw, r)
	cw.flushTo(pw, rewrite)
}

// RefuseLegacy answers, as a 2026-07-28-only server, a request of the
// legacy era, and reports whether it did; the body is left for the next
// handler to read.
func RefuseLegacy(w http.ResponseWriter, r *http.Request) bool {
	body, err := readBody(r)
	if err != nil {
		http.Error(w, "reading the request failed", http.StatusBadRequest)
		return true
	}
	return refuseLegacy(w, r, body)
}

// refuseLegacy rejects, for ModernOnly, every request that is not on
// 2026-07-28, and reports whether it did. mcp-go has no option to turn the
// initialize handshake off: WithStreamableHTTPProtocolVersions only limits
// what server/discover advertises and which 2026-07-28 requests pass.
func refuseLegacy(w http.ResponseWriter, r *http.Request, body []byte) bool {
	version := r.Header.Get(mcp.HeaderProtocolVersion)
	if mcp.IsModernProtocol(version) {
		return false
	}
	if r.Method != http.MethodPost {
		// The standalone GET stream and session DELETE belong to the
		// legacy era; RFC 9110 section 15.5.6 requires Allow on a 405.
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only protocol version "+mcp.ProtocolVersion20260728+" is served", http.StatusMethodNotAllowed)
		return true
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	_ = json.Unmarshal(body, &msg)
	if msg.Method == string(mcp.MethodInitialize) {
		// HTTP 200, as a legacy server sends JSON-RPC errors: a 4xx would
		// make mcp-go's client report "legacy SSE server" instead of this
		// message.
		writeRPCError(w, http.StatusOK, msg.ID, mcp.JSONRPCErrorDetails{
			Code:    mcp.METHOD_NOT_FOUND,
			Message: "initialize is not supported: use server/discover (" + mcp.ProtocolVersion20260728 + ")",
		})
		return true
	}
	unsupported := mcp.UnsupportedProtocolVersionError{Version: version, Supported: modernVersions}
	writeRPCError(w, http.StatusBadRequest, msg.ID, unsupported.JSONRPCError().Error)
	return true
}

// writeRPCError writes a JSON-RPC error response, echoing the request's id
// byte for byte.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, details mcp.JSONRPCErrorDetails) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		JSONRPC string                  `json:"jsonrpc"`
		ID      json.RawMessage         `json:"id"`
		Error   mcp.JSONRPCErrorDetails `json:"error"`
	}{mcp.JSONRPC_VERSION, id, details})
}
