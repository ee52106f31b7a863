package mcpmux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
)

// exchange is one agent request being served.
type exchange struct {
	mux *Mux
	// park is the parked call this request runs in, if it can be one.
	park   *parked
	ctx    context.Context
	r      *http.Request
	caller grants.Caller
	// view is the caller's grants, computed once for the request: every
	// list and every call of it is judged by the same rules.
	view  *grants.View
	scope string
	// modern is set by admit for a 2026-07-28 request; session is the
	// legacy session named by Mcp-Session-Id, nil in the stateless era
	// and for initialize.
	modern  bool
	session *session
	rs      *responder
	// method and params are the request being answered, for replies that
	// depend on them.
	method string
	params []byte
	// listedAt is when the oldest upstream list an aggregated answer was
	// made from was fetched, for its ttlMs.
	listedAt time.Time
	// creds holds the credentials this request has used: a few at most,
	// so a slice. gather fills it before it starts any goroutine.
	creds []usedCredential
}

// usedCredential is a credential a request has used at one connector.
// Kept per request only: a token refreshed between two requests is the
// next request's to find.
type usedCredential struct {
	connector string
	Credential
}

// lookupHeader returns the request's header key and whether it was sent,
// so that a header sent empty differs from one left out.
func (x *exchange) lookupHeader(key string) (string, bool) {
	v, ok := x.r.Header[http.CanonicalHeaderKey(key)]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// era is the upstream era that serves this agent's requests best: its own.
func (x *exchange) era() era {
	if x.modern {
		return eraModern
	}
	return eraLegacy
}

// message is one JSON-RPC message from an agent.
type message struct {
	kind int
	// id is the agent's id as it sent it, byte for byte, so that the
	// answer echoes it exactly ("1" and 1 are different ids).
	id     json.RawMessage
	method string
	params json.RawMessage
	// raw is a response's whole message.
	raw []byte
}

// NoSuchConnector is the whole answer, with status 404, to a request for
// a connector that does not exist or that the caller may not see: the same
// for both, so that a caller learns nothing of connectors hidden from it.
const NoSuchConnector = "no such connector or endpoint"

// ServeMCP serves an agent's request to an MCP endpoint: the aggregated one
// when scope is empty, else the named connector's own. The caller must
// already be authenticated; an empty caller ID sees nothing. ServeMCP
// writes every answer itself, errors included, and may hold the
// response open as an event stream for as long as the agent listens.
func (m *Mux) ServeMCP(w http.ResponseWriter, r *http.Request, caller grants.Caller, scope string) {
	// First, before anything reads a header: every later check reads
	// the first value of a header that a proxy may read the last of.
	if rerr := checkSingleHeaders(r.Header); rerr != nil {
		if r.Method == http.MethodPost {
			writeRPCError(w, http.StatusBadRequest, nil, rerr)
		} else {
			writeHTTPError(w, http.StatusBadRequest, rerr.Message)
		}
		return
	}
	view := m.view(caller)
	// A connector that is only an HTTP API has no MCP endpoint to serve.
	// One the caller may not see answers exactly as one that does not
	// exist (the handler sends both here), before the Origin check, so
	// that no answer tells them apart.
	if scope != "" && (!m.speaksMCP(scope) || !view.Visible(scope)) {
		writeHTTPError(w, http.StatusNotFound, NoSuchConnector)
		return
	}
	// Streamable HTTP, "Security & Endpoint": a server must validate
	// Origin against DNS rebinding and answer an invalid one with 403.
	if why := m.hosts.check(r); why != "" {
		writeHTTPError(w, http.StatusForbidden, why)
		return
	}
	if !m.sameOrigin(r) {
		writeHTTPError(w, http.StatusForbidden, "the request's Origin is not allowed")
		return
	}
	// A disabled connector's own endpoint serves nothing, to a caller
	// who may know of it: told why, so that an agent stops retrying. After
	// the Host and Origin checks, so that a page that rebinds its name to
	// the gateway gets their refusal and learns nothing of the connector.
	if c := m.conns[scope]; c != nil && c.Disabled {
		writeHTTPError(w, http.StatusForbidden, connectors.DisabledError(scope).Error())
		return
	}
	switch r.Method {
	case http.MethodPost:
		m.servePost(w, r, caller, view, scope)
	case http.MethodGet:
		m.serveGet(w, r, caller, scope)
	case http.MethodDelete:
		m.serveDelete(w, r, caller, scope)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeHTTPError(w, http.StatusMethodNotAllowed, "the MCP endpoint takes POST, GET and DELETE")
	}
}

// servePost serves one POSTed JSON-RPC message or batch.
func (m *Mux) servePost(w http.ResponseWriter, r *http.Request, caller grants.Caller, view *grants.View, scope string) {
	body, ok := m.readBody(w, r)
	if !ok {
		return
	}
	// Strict JSON before anything routes on the body: with a duplicate
	// or case-folded member ("name" and "Name"), the grant check and the
	// upstream could read different tools (CVE-2026-27896 in the Go SDK).
	if err := checkJSON(body); err != nil {
		code := codeInvalidRequest
		if strictjson.IsSyntax(err) {
			code = codeParseError
		}
		writeRPCError(w, http.StatusBadRequest, nil, &rpcError{Code: code, Message: err.Error()})
		return
	}
	// An agent that does not accept an event stream gets plain JSON and
	// misses the notifications sent while its request runs.
	x := &exchange{mux: m, ctx: r.Context(), r: r, caller: caller, view: view, scope: scope,
		rs: &responder{w: w, canSSE: strings.Contains(r.Header.Get("Accept"), "text/event-stream")}}
	// checkJSON accepted the body, so it holds one value after spaces.
	body = bytes.TrimLeft(body, " \t\r\n")
	if body[0] == '[' {
		m.serveBatch(w, x, body)
		return
	}
	msg, rerr := parseMessage(body)
	if rerr == nil {
		rerr = m.admit(w, x, msg)
	} else {
		// A message too broken to admit still gets its era's status.
		x.modern = mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
	}
	if rerr != nil {
		if rerr.Code != 0 {
			writeRPCError(w, m.httpStatus(x, rerr.Code), msg.id, rerr)
		}
		return
	}
	m.serveMessage(x, msg)
}

// serveMessage answers one admitted message.
func (m *Mux) serveMessage(x *exchange, msg *message) {
	// A notification or response has no answer: 202 with no body
	// (Streamable HTTP, "Sending Messages").
	if msg.kind != kindRequest {
		m.notification(x, msg)
		x.rs.w.WriteHeader(http.StatusAccepted)
		return
	}
	switch {
	case msg.method == "initialize" && !x.modern:
		m.initialize(x, msg)
		return
	case msg.method == "subscriptions/listen" && x.modern:
		m.listen(x, msg)
		return
	}
	if x.session != nil {
		// Legacy agents cancel with notifications/cancelled on another
		// POST; stateless ones by going away, which ends x.ctx already.
		// Deferred in this order, the id is forgotten before the context
		// is cancelled: a late notifications/cancelled finds nothing.
		ctx, cancel := context.WithCancel(x.ctx)
		defer cancel()
		defer x.session.track(msg.id, cancel)()
		x.ctx = ctx
	}
	rep := m.dispatch(x, msg)
	x.rs.respond(msg.id, rep, m.replyStatus(x, rep))
}

// notification handles a notification, or an answer to one of the
// gateway's questions, from an agent. Both are looked up in the agent's
// own session only, so an agent cannot answer another's question nor
// cancel another's request by guessing its id. Without a session there
// is nothing to look up: a 2026-07-28 agent cancels by closing its
// stream, and answers questions by retrying its request.
func (m *Mux) notification(x *exchange, msg *message) {
	if msg.kind == kindResponse && x.session != nil {
		x.session.asks.answer(msg.id, msg.raw)
		return
	}
	if msg.method != "notifications/cancelled" || x.session == nil {
		return
	}
	if id := member(msg.params, "requestId"); id != nil {
		x.session.cancel(id)
	}
}

// checkSingleHeaders refuses a request that sends an MCP header (Mcp-*)
// more than once. Each carries one value, and the gateway reads the first
// while a proxy in front of it may route on the last: Mcp-Name naming an
// allowed tool for the check and another for the proxy, as the header and
// body mismatch the 2026-07-28 headers exist to prevent. Go's server keeps
// repeated lines apart; a proxy may fold them into one comma-separated
// line (RFC 9110 section 5.3). A method, a protocol version or a session
// ID never holds a comma, so there a comma is such a list; a name or an
// argument may, and is compared whole with the body, which a folded list
// does not match.
func checkSingleHeaders(h http.Header) *rpcError {
	var bad string
	for key, values := range h {
		// The first in name order, so that the error does not vary.
		if listHeader(key, values) && (bad == "" || key < bad) {
			bad = key
		}
	}
	if bad == "" {
		return nil
	}
	code := codeInvalidRequest
	if bad == mcp.HeaderMethod || bad == mcp.HeaderName || strings.HasPrefix(bad, mcp.HeaderParamPrefix) {
		code = codeHeaderMismatch
	}
	return errorf(code, "the %s header must be sent once, with one value", bad)
}

// listHeader reports whether the MCP header key arrived as a list of
// values: several lines, or, where a value never holds a comma, one line
// with a comma.
func listHeader(key string, values []string) bool {
	if !strings.HasPrefix(key, "Mcp-") {
		return false
	}
	if len(values) > 1 {
		return true
	}
	noComma := key == mcp.HeaderMethod || key == mcp.HeaderProtocolVersion || key == mcp.HeaderSessionID
	return noComma && len(values) == 1 && strings.Contains(values[0], ",")
}

// admit settles the message's protocol era and, for the legacy era, its
// session. A non-nil error with code 0 means the response is written.
func (m *Mux) admit(w http.ResponseWriter, x *exchange, msg *message) *rpcError {
	header := x.r.Header.Get(mcp.HeaderProtocolVersion)
	metaVersion := metaProtocolVersion(msg.params)
	if mcp.IsModernProtocol(header) || mcp.IsModernProtocol(metaVersion) {
		return m.admitModern(x, msg, header, metaVersion)
	}
	if header != "" && !mcp.IsValidProtocolVersion(header) {
		return errorf(codeInvalidRequest, "unsupported protocol version %q", header)
	}
	if msg.method == "initialize" && msg.kind == kindRequest {
		return nil
	}
	sid := x.r.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		return errorf(codeInvalidRequest, "the Mcp-Session-Id header is required: send initialize first, or use protocol version %s", mcp.ProtocolVersion20260728)
	}
	// A session is bound to its caller and endpoint: one presented by
	// anyone else is not found, so that a leaked id grants nothing (a
	// session is never authentication: Security Best Practices 2025-11-25,
	// "Session Hijacking"). 404 tells a client to initialize again.
	ss, ok := m.session(x.ctx, sid, x.caller, x.scope)
	if !ok {
		writeRPCError(w, http.StatusNotFound, msg.id, errorf(codeInvalidRequest, "session not found: initialize again"))
		return &rpcError{}
	}
	x.session = ss
	return nil
}

// admitModern checks a 2026-07-28 request: the version in the header and
// in _meta must agree, and Mcp-Method and Mcp-Name must match the body.
// Streamable HTTP, "Request Metadata": intermediaries route on these
// headers while the gateway acts on the body, so a mismatch is refused
// (400, HeaderMismatch) rather than let the two disagree on the tool.
func (m *Mux) admitModern(x *exchange, msg *message, header, metaVersion string) *rpcError {
	x.modern = true
	switch {
	case header == "":
		return errorf(codeHeaderMismatch, "the %s header is required with %s", mcp.HeaderProtocolVersion, mcp.MetaKeyProtocolVersion)
	case metaVersion == "":
		return errorf(codeInvalidParams, "params._meta[%q] is required with the %s header", mcp.MetaKeyProtocolVersion, mcp.HeaderProtocolVersion)
	case header != metaVersion:
		return errorf(codeHeaderMismatch, "the %s header %q does not match _meta %q", mcp.HeaderProtocolVersion, header, metaVersion)
	case !mcp.IsValidProtocolVersion(header):
		e := mcp.UnsupportedProtocolVersionError{Version: header, Supported: supportedVersions}.JSONRPCError().Error
		return &rpcError{Code: e.Code, Message: e.Message, Data: e.Data}
	}
	if err := mcp.ValidateStandardHeaders(x.r.Header.Get, header, mcp.MCPMethod(msg.method), msg.params); err != nil {
		return errorf(codeHeaderMismatch, "%v", err)
	}
	if msg.kind == kindRequest && m.servesModern(msg.method) {
		return checkRequestMeta(msg.params)
	}
	return nil
}

// checkRequestMeta refuses a 2026-07-28 request whose _meta lacks a
// member the specification requires on every request: the client's
// capabilities, an object, since the server holds none from a handshake
// (Basic, "_meta", per-request protocol fields: -32602, HTTP 400). The
// protocol version is checked with the header before; an optional log
// level, when sent, must be a LoggingLevel.
func checkRequestMeta(params []byte) *rpcError {
	meta := member(params, "_meta")
	if caps := member(meta, mcp.MetaKeyClientCapabilities); len(caps) == 0 || caps[0] != '{' {
		return errorf(codeInvalidParams, "params._meta[%q] is required and must be an object", mcp.MetaKeyClientCapabilities)
	}
	if raw := member(meta, mcp.MetaKeyLogLevel); raw != nil {
		if level, err := unquote(raw); err != nil || !validLogLevel(level) {
			return errorf(codeInvalidParams, "params._meta[%q] must be a logging level, such as \"info\"", mcp.MetaKeyLogLevel)
		}
	}
	return nil
}

// serveGet opens a legacy session's notification stream. The stream ends
// with the session, the agent's request or the Mux, whichever is first.
func (m *Mux) serveGet(w http.ResponseWriter, r *http.Request, caller grants.Caller, scope string) {
	if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, http.StatusMethodNotAllowed, "protocol version "+mcp.ProtocolVersion20260728+" has no GET stream: use subscriptions/listen")
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		writeHTTPError(w, http.StatusNotAcceptable, "the GET stream is text/event-stream; the Accept header must allow it")
		return
	}
	sid := r.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		writeHTTPError(w, http.StatusBadRequest, "the Mcp-Session-Id header is required")
		return
	}
	ss, ok := m.session(r.Context(), sid, caller, scope)
	if !ok {
		writeHTTPError(w, http.StatusNotFound, "session not found: initialize again")
		return
	}
	m.stream(w, r, &listener{caller: caller, scope: scope, kinds: allKinds(), events: make(chan []byte, 16), ended: ss.ended}, nil)
}

// serveDelete ends a legacy session.
func (m *Mux) serveDelete(w http.ResponseWriter, r *http.Request, caller grants.Caller, scope string) {
	if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, http.StatusMethodNotAllowed, "protocol version "+mcp.ProtocolVersion20260728+" has no sessions to delete")
		return
	}
	// Not resumed to be ended: that would count against the caller's
	// share, and could push out another of its sessions.
	ss, _, ok := m.lookup(r.Context(), r.Header.Get(mcp.HeaderSessionID), caller, scope)
	if !ok {
		writeHTTPError(w, http.StatusNotFound, "session not found")
		return
	}
	// Not ended unless every instance will know it: the agent is told to
	// try again rather than believe it ended a session still served.
	if err := m.endSession(r.Context(), ss); err != nil {
		m.logger.Error("ending a session", zap.Error(err))
		writeHTTPError(w, http.StatusServiceUnavailable, "the session could not be ended: try again")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readBody reads the request body within the size limit, answering 413
// when it is larger.
func (m *Mux) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := func() *rpcError {
		return errorf(codeInvalidRequest, "the request body is larger than the limit of %d bytes", m.maxBody)
	}
	// A declared length over the limit is refused before a byte is read;
	// MaxBytesReader stops a chunked body, whose length is not known.
	if r.ContentLength > m.maxBody {
		writeRPCError(w, http.StatusRequestEntityTooLarge, nil, tooLarge())
		return nil, false
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, m.maxBody), r.ContentLength)
	switch {
	case err == nil:
	case errors.As(err, new(*http.MaxBytesError)):
		writeRPCError(w, http.StatusRequestEntityTooLarge, nil, tooLarge())
		return nil, false
	case err != nil:
		writeRPCError(w, http.StatusBadRequest, nil, errorf(codeParseError, "reading the request body: %v", err))
		return nil, false
	case len(bytes.TrimSpace(body)) == 0:
		writeRPCError(w, http.StatusBadRequest, nil, errorf(codeParseError, "the request body is empty"))
		return nil, false
	}
	return body, true
}

// readAll reads body whole, in one allocation when its length is known.
func readAll(body io.Reader, length int64) ([]byte, error) {
	if length <= 0 {
		return io.ReadAll(body)
	}
	// One byte more than declared, so that a body longer than its
	// Content-Length shows as a full buffer rather than as a clean end.
	buf := make([]byte, length+1)
	n, err := io.ReadFull(body, buf)
	if err == io.ErrUnexpectedEOF {
		return buf[:n], nil
	}
	if err != nil {
		return nil, err
	}
	// A body longer than it said: read the rest so limits still apply.
	rest, err := io.ReadAll(body)
	return append(buf, rest...), err
}

// sameOrigin rejects browser requests from other sites (DNS rebinding): a
// request with an Origin must come from the gateway's own origin. Agents
// that are not browsers send no Origin and are not affected.
func (m *Mux) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if m.origins[origin] {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// parseMessage reads a JSON-RPC message's envelope. It scans the raw
// bytes rather than decoding into a struct, so that params reach the
// upstream exactly as sent (raw.go). Even when it fails it returns the
// message, whose id, if readable, the error answer echoes.
func parseMessage(body []byte) (*message, *rpcError) {
	msg := &message{}
	var version string
	var hasResult, hasMethod bool
	var bad *rpcError
	err := members(body, func(key string, v span) bool {
		raw := body[v.start:v.end]
		switch key {
		case "jsonrpc":
			version, _ = unquote(raw)
		case "id":
			msg.id = raw
		case "method":
			hasMethod = true
			if s, err := unquote(raw); err == nil && raw[0] == '"' {
				msg.method = s
			} else {
				bad = errorf(codeInvalidRequest, "method must be a string")
			}
		case "params":
			msg.params = raw
		case "result", "error":
			hasResult = true
		}
		return true
	})
	switch {
	case err != nil:
		return msg, errorf(codeInvalidRequest, "a JSON-RPC message must be an object")
	case version != "2.0":
		return msg, errorf(codeInvalidRequest, `jsonrpc must be "2.0"`)
	case msg.id != nil && !validID(msg.id):
		id := msg.id
		msg.id = nil
		return msg, errorf(codeInvalidRequest, "id must be a string or a number, not %.20s", id)
	case bad != nil:
		return msg, bad
	case hasMethod && msg.method == "":
		return msg, errorf(codeInvalidRequest, "method must not be empty")
	case msg.params != nil && msg.params[0] != '{':
		return msg, errorf(codeInvalidParams, "params must be an object")
	case hasMethod && msg.id != nil:
		msg.kind = kindRequest
	case hasMethod:
		msg.kind = kindNotification
	case hasResult && msg.id != nil:
		msg.kind, msg.raw = kindResponse, body
	default:
		return msg, errorf(codeInvalidRequest, "a JSON-RPC message needs a method, or a result or error with an id")
	}
	return msg, nil
}

// validID reports whether raw is a string or a number. JSON-RPC allows
// null, MCP does not (Basic, "Requests": a string or integer, never null),
// and an object or array could not key the gateway's maps.
func validID(raw []byte) bool {
	c := raw[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}

// metaProtocolVersion reads params._meta's protocol version.
func metaProtocolVersion(params []byte) string {
	if len(params) == 0 {
		return ""
	}
	v, _ := stringMember(member(params, "_meta"), mcp.MetaKeyProtocolVersion)
	return v
}

// answer builds the JSON-RPC response to id. A nil id, for a message too
// broken to have one, becomes null, as JSON-RPC 2.0 requires.
func answer(id []byte, rep *reply) []byte {
	out := make([]byte, 0, len(rep.result)+len(rep.err)+len(id)+40)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		id = []byte("null")
	}
	out = append(out, id...)
	if rep.err != nil {
		out = append(out, `,"error":`...)
		out = append(out, rep.err...)
	} else {
		out = append(out, `,"result":`...)
		out = append(out, rep.result...)
	}
	return append(out, '}')
}

// failure turns a gateway error into a reply.
func failure(err *rpcError) *reply {
	raw, _ := json.Marshal(err)
	return &reply{err: raw}
}

// writeRPCError writes a JSON-RPC error response.
func writeRPCError(w http.ResponseWriter, status int, id []byte, err *rpcError) {
	writeJSON(w, status, answer(id, failure(err)))
}

// writeHTTPError writes a plain JSON error for requests that are not
// JSON-RPC messages.
func writeHTTPError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	writeJSON(w, status, body)
}

// httpStatus maps a JSON-RPC error code to the HTTP status of the era:
// the legacy era answers errors with 200, but for a message it could not
// take at all; 2026-07-28 with 4xx for request errors (Streamable HTTP,
// "Protocol Version Header": 400 for a bad version or header, 404 with
// -32601 for a method the server does not implement).
func (m *Mux) httpStatus(x *exchange, code int) int {
	if !x.modern {
		if code == codeParseError || code == codeInvalidRequest || code == codeHeaderMismatch {
			return http.StatusBadRequest
		}
		return http.StatusOK
	}
	switch code {
	case codeMethodNotFound:
		return http.StatusNotFound
	case codeHeaderMismatch, codeInvalidRequest, codeInvalidParams, codeParseError, mcp.UNSUPPORTED_PROTOCOL_VERSION, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// replyStatus is the HTTP status of a reply. Only a 2026-07-28 error
// needs its code read again; every other reply is 200.
func (m *Mux) replyStatus(x *exchange, rep *reply) int {
	if rep.err == nil || !x.modern {
		return http.StatusOK
	}
	var e struct {
		Code int `json:"code"`
	}
	_ = json.Unmarshal(rep.err, &e)
	return m.httpStatus(x, e.Code)
}

// checkJSON rejects bodies that parsers could read differently:
// duplicate or case-folded member names, invalid UTF-8, deep nesting.
// Agents' and upstreams' messages both pass it before the raw scanners
// in raw.go, which rely on it.
func checkJSON(data []byte) error {
	return strictjson.Check(data, nil)
}
