package mcpmux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/redact"
)

// maxUpstreamMessage caps one message from an upstream, so that a broken
// upstream cannot exhaust the gateway's memory. It is far above an
// agent's DefaultMaxBody: a result may carry a whole file or image, in
// base64, where a request carries arguments.
const maxUpstreamMessage = 64 << 20

// gatewayMetaPrefix marks the _meta keys that describe the protocol
// connection itself. An agent's are never forwarded: the upstream
// connection is the gateway's, and it states its own. An agent that could
// set them would speak for the gateway: claim another protocol version or
// client, on a session other agents share.
const gatewayMetaPrefix = "io.modelcontextprotocol/"

// errSessionGone means the upstream forgot the legacy session: it answered
// 404 to the session's id, which tells a client to start a new session
// (Streamable HTTP 2025-11-25, "Session Management").
var errSessionGone = errors.New("upstream session expired")

// reply is an upstream's answer to one request: a result or an error
// object, passed through as raw JSON.
type reply struct {
	result json.RawMessage
	err    json.RawMessage
	// refused says why the gateway answered a call itself, or is nil.
	refused *refusal
}

// rpc is one request on its way to an upstream.
type rpc struct {
	method string
	params []byte
	// name is what the request names upstream, for the Mcp-Name header
	// (2026-07-28): a tool, a prompt or a resource URI, or empty.
	name string
	// sink receives the notifications sent while the upstream works on it.
	sink notifySink
	// tool, for tools/call, is the tool's definition when its arguments
	// are mirrored into Mcp-Param-* headers (2026-07-28).
	tool *mcp.Tool
	// hide is the credential, to hide in the answer, or nil when exchange
	// is to find it in the request's headers.
	hide *redact.Secrets
	// ask puts the upstream's requests for input to the agent, or is nil
	// when there is no agent to ask.
	ask askFunc
	// caller is the agent's caller, for a call relayed to; "" for the
	// gateway's own requests.
	caller string
	// agent is what a legacy agent's session holds for a 2026-07-28
	// upstream; zero for anyone else.
	agent agentMeta
}

// agentMeta is what a legacy agent declared on its session, which a
// 2026-07-28 request carries in its _meta; its zero value declares
// nothing.
type agentMeta struct {
	caps  []byte
	level mcp.LoggingLevel
}

// notifySink receives the notifications an upstream sends while it works on
// a request, such as progress, as raw JSON-RPC messages.
type notifySink func(msg []byte)

// upstreamState is what connecting to an upstream settled.
type upstreamState struct {
	modern  bool
	version string
	session string
	caps    json.RawMessage
	// versionHeader and sessionHeader are version and session as the
	// header values every request carries, made once the state is ready
	// (ready); the transport only reads them.
	versionHeader, sessionHeader []string
}

// ready makes st's header values, before st serves any call. The
// handshake's own requests, made before, build theirs each time.
func (st *upstreamState) ready() {
	if st.version != "" {
		st.versionHeader = []string{st.version}
	}
	if st.session != "" {
		st.sessionHeader = []string{st.session}
	}
}

// upstream is mcpgate's connection to one connector with one credential.
// Every agent request for that pair shares it: one MCP session, and the
// pooled keep-alive connections of the shared HTTP client.
type upstream struct {
	conn *connectors.Connector
	// credKey is the key of the credential this connection carries: its
	// notifications concern the lists that credential sees.
	credKey string
	client  *http.Client
	logger  *zap.Logger
	// onNotify sees every notification the upstream sends, so that the
	// mux can act on list_changed.
	onNotify func(u *upstream, method string)
	// calls are the legacy session's calls in flight, for what it sends
	// that names no call.
	calls inflight
	// onUpdated is told of every notifications/resources/updated, with
	// the URI it names.
	onUpdated func(u *upstream, uri string)
	// watch is the resources agents subscribed to through this connection.
	watch resourceWatch
	// background runs a goroutine for as long as the mux lives.
	background func(func(ctx context.Context)) bool

	// now is the mux's clock, for remembering a failed connect.
	now func() time.Time
	// observer is told of every request, or is nil.
	observer Observer
	// sender is the credential's RoundTrip (Credential.RoundTrip), or nil.
	sender atomic.Pointer[func(rt http.RoundTripper, req *http.Request) (*http.Response, error)]

	// nextID numbers the gateway's requests. Agents' ids are never
	// forwarded: agents share this connection and many send id 1, and a
	// response routed by an agent's id could reach another agent
	// (GHSA-345p-7cg4-v4c7 in the TypeScript SDK).
	nextID   atomic.Int64
	progress progressRoutes

	// mu makes one handshake of however many agents arrive at once; the
	// others wait for it and share what it opened. Once a connection is
	// up, every call reads it from legacy or modern without a lock.
	mu       sync.Mutex
	legacy   atomic.Pointer[upstreamState]
	modern   atomic.Pointer[upstreamState]
	noLegacy atomic.Bool // the upstream refused initialize
	noModern atomic.Bool // the upstream refused server/discover
	failed   atomic.Pointer[connectFailure]
	listens  atomic.Bool // a notification stream is open
}

// call sends one request, connecting first and reconnecting once when a
// legacy session has expired. The retry is safe: an upstream that answers
// 404 to a session never ran the request.
func (u *upstream) call(ctx context.Context, cred http.Header, want era, r *rpc) (*reply, *upstreamState, error) {
	// A copy, so that the caller's rpc is not changed, and the credential
	// to hide is found once for every attempt.
	tracked := *r
	tracked.hide = redact.FromHeader(cred)
	tracked.sink = hiding(tracked.hide, r.sink)
	var forget func()
	tracked.params, forget = u.progress.track(r.params, tracked.sink)
	defer forget()
	for attempt := 0; ; attempt++ {
		st, err := u.ensure(ctx, cred, want)
		if err != nil {
			return nil, nil, err
		}
		rep, err := u.exchange(ctx, cred, st, &tracked)
		if errors.Is(err, errSessionGone) && attempt == 0 {
			u.reset(st)
			continue
		}
		return rep, st, err
	}
}

// notify sends a notification, which has no answer.
func (u *upstream) notify(ctx context.Context, cred http.Header, st *upstreamState, method string, params []byte) error {
	body := appendEnvelope(nil, method, u.params(st, params, agentMeta{}))
	resp, err := u.post(ctx, cred, st, body, &rpc{method: method, params: params})
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// exchange posts one request and reads its answer, relaying notifications
// to sink, and tells the observer. Whatever the answer repeats of the
// credential is hidden before anyone sees it.
func (u *upstream) exchange(ctx context.Context, cred http.Header, st *upstreamState, r *rpc) (*reply, error) {
	start := time.Now()
	rep, err := u.roundTrip(ctx, cred, st, r)
	hide := r.hide
	if hide == nil {
		hide = redact.FromHeader(cred)
	}
	rep, err = hidden(hide, rep, err)
	if u.observer != nil {
		u.observer.UpstreamRequest(UpstreamRequest{Connector: u.conn.ID, Method: r.method, Duration: time.Since(start), Err: err})
	}
	return rep, err
}

// hidden replaces the credential wherever an upstream's answer repeats it:
// a tool that echoes its request's headers, an error message that quotes
// them. The result and the error stay the JSON the upstream sent,
// byte for byte, but for the credential. An error message can carry
// upstream text too (a member name, an id), so it is redacted as well.
func hidden(hide *redact.Secrets, rep *reply, err error) (*reply, error) {
	if hide == nil {
		return rep, err
	}
	if rep != nil {
		rep.result, rep.err = hide.JSON(rep.result), hide.JSON(rep.err)
	}
	return rep, hide.Error(err)
}

// hiding returns sink with the credential replaced in every message it
// relays: notifications on the request's own stream, and its progress,
// which may come on any stream of the upstream's.
func hiding(hide *redact.Secrets, sink notifySink) notifySink {
	if hide == nil || sink == nil {
		return sink
	}
	return func(msg []byte) { sink(hide.JSON(msg)) }
}

// roundTrip posts one request and reads its answer, relaying
// notifications to sink.
func (u *upstream) roundTrip(ctx context.Context, cred http.Header, st *upstreamState, r *rpc) (*reply, error) {
	id := u.nextID.Add(1)
	idRaw := strconv.AppendInt(nil, id, 10)
	body := appendEnvelope(idRaw, r.method, u.params(st, r.params, r.agent))
	// The connector's timeout bounds the wait for the upstream, its
	// questions to the agent aside. stop runs last, once the upstream has
	// been told of a request given up.
	ctx, ask, stop := boundWait(ctx, u.conn.RequestTimeout(), r.ask)
	defer stop()
	if ask != nil {
		timed := *r
		timed.ask = ask
		r = &timed
	}
	defer u.cancelOnAbandon(ctx, cred, st, idRaw)
	if !st.modern && r.caller != "" {
		defer u.calls.add(r.caller, callRoute{r.sink, r.ask})()
	}
	resp, err := u.post(ctx, cred, st, body, r)
	if err != nil {
		return nil, err
	}
	defer drain(resp.Body)
	if r.method == "initialize" {
		st.session = resp.Header.Get(mcp.HeaderSessionID)
	}
	mediaType := mediaTypeOf(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusOK && mediaType == "text/event-stream":
		return u.readStream(ctx, cred, st, resp.Body, idRaw, r)
	case resp.StatusCode == http.StatusOK:
		return readReply(resp.Body, resp.ContentLength, idRaw)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// A refused credential goes back with its challenge, so that the
		// credential source can refresh it or find the scope to ask for
		// (Authorization, "Scope Challenge Handling"). A 403 for any other
		// reason is the request's fault, not the token's.
		se := &StatusError{Code: resp.StatusCode, Challenge: resp.Header.Get("WWW-Authenticate")}
		if errors.Is(se, ErrUnauthorized) {
			return nil, se
		}
	}
	// The stateless era answers some JSON-RPC errors with 4xx statuses.
	if mediaType == "application/json" {
		if rep, err := readReply(resp.Body, resp.ContentLength, idRaw); err == nil && rep.err != nil {
			return rep, nil
		}
	}
	if resp.StatusCode == http.StatusNotFound && st.session != "" {
		return nil, errSessionGone
	}
	return nil, &StatusError{Code: resp.StatusCode}
}

// mediaTypeOf returns the media type a Content-Type value names, without
// its parameters. The two an upstream sends nearly always, written
// plainly, are taken as they are: parsing builds a map of parameters on
// every answer.
func mediaTypeOf(v string) string {
	switch v {
	case "application/json", "text/event-stream":
		return v
	}
	t, _, _ := mime.ParseMediaType(v)
	return t
}

// cancelOnAbandon tells a legacy session that the gateway gave up on a
// request, because its agent cancelled it or went away. (A stateless
// request is cancelled by closing its stream, which has happened.)
func (u *upstream) cancelOnAbandon(ctx context.Context, cred http.Header, st *upstreamState, id []byte) {
	if ctx.Err() == nil || st.modern || st.session == "" {
		return
	}
	params := []byte(`{"requestId":` + string(id) + `,"reason":"the agent cancelled the request"}`)
	// The request's context has ended, so the notice gets its own, with
	// the same values but a deadline of its own: the upstream should stop
	// work nobody waits for, yet a dead upstream must not hold a
	// goroutine. Nothing waits for the answer, which has none. It runs as
	// the Mux's, which ends it on Close and waits for it: a notice that
	// outlived Close held a request open to the upstream after the gateway
	// had closed.
	u.detach(func(life context.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		defer context.AfterFunc(life, cancel)()
		_ = u.notify(ctx, cred, st, "notifications/cancelled", params)
	})
}

// detach runs f apart from the request at hand, as one of the Mux's
// background goroutines, with the Mux's context, life: Close ends it and
// waits for it, so that nothing the gateway sends an upstream outlives
// Close. When the Mux is closing f does not run. A connection made outside
// a Mux has no life but its own.
func (u *upstream) detach(f func(life context.Context)) {
	if u.background == nil {
		go f(context.Background())
		return
	}
	u.background(f)
}

// post sends one JSON-RPC message with the era's headers and the
// credential. Nothing of the agent's request is copied: the headers are
// built from scratch, which is what keeps the agent's own Authorization
// and cookies from ever reaching an upstream.
func (u *upstream) post(ctx context.Context, cred http.Header, st *upstreamState, body []byte, r *rpc) (*http.Response, error) {
	req := u.request(ctx, body)
	u.setHeaders(req.Header, cred, st)
	if st.modern {
		// mcp.StandardHeaders would decode the params again for the name,
		// which the gateway already has.
		req.Header[mcp.HeaderMethod] = []string{r.method}
		if v, ok := mcp.EncodeHeaderValue(r.name); ok && mcp.MethodRequiresNameHeader(mcp.MCPMethod(r.method)) {
			req.Header[mcp.HeaderName] = []string{v}
		}
		if r.tool != nil {
			for k, v := range mcp.GenerateParamHeaders(r.tool, r.params) {
				req.Header[k] = []string{v}
			}
		}
	}
	// Straight to the transport: the client follows no redirect (one could
	// carry the credential to another host), has no cookie jar and no
	// timeout of its own, so all it would add is a copy of the headers and
	// an error wrapping that unreachable cuts off again.
	resp, err := u.send(req)
	if err != nil {
		return nil, unreachable(ctx, err)
	}
	return resp, nil
}

// send sends req through the transport, by the credential's RoundTrip
// when it has one.
func (u *upstream) send(req *http.Request) (*http.Response, error) {
	if rt := u.sender.Load(); rt != nil {
		return (*rt)(u.client.Transport, req)
	}
	return u.client.Transport.RoundTrip(req)
}

// request builds a POST of body to the upstream. It is made by hand rather
// than by http.NewRequest so that the connector's URL is not parsed again
// for every call; the client only reads it.
func (u *upstream) request(ctx context.Context, body []byte) *http.Request {
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           u.conn.URL,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, 8),
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          u.conn.URL.Host,
	}).WithContext(ctx)
	// GetBody lets the transport send the body again when it must retry
	// on a fresh connection (a keep-alive connection the upstream closed,
	// an HTTP/2 GOAWAY) before the upstream read the request.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return req
}

// setHeaders sets the credential and the era's headers. The credential
// goes first, so that a connector's configured header cannot replace the
// protocol's own.
func (u *upstream) setHeaders(h http.Header, cred http.Header, st *upstreamState) {
	for k, v := range cred {
		h[k] = v
	}
	h["Content-Type"] = jsonType
	h["Accept"] = acceptBoth
	h["User-Agent"] = userAgent
	if st.version != "" {
		h[mcp.HeaderProtocolVersion] = headerValue(st.versionHeader, st.version)
	}
	if st.session != "" {
		h[mcp.HeaderSessionID] = headerValue(st.sessionHeader, st.session)
	}
}

// headerValue is made, the values made for v once, or else v's own.
func headerValue(made []string, v string) []string {
	if made != nil {
		return made
	}
	return []string{v}
}

// Header values every upstream request carries. The HTTP client only reads
// a request's headers, so one slice serves them all.
var (
	jsonType   = []string{"application/json"}
	acceptBoth = []string{"application/json, text/event-stream"}
	userAgent  = []string{"mcpgate/" + Version}
)

// unreachable describes a transport failure without internal detail. The
// message reaches the agent, and Go's *url.Error begins with the whole
// upstream URL, whose query may hold an API key: only the last cause is
// kept ("connection refused", "no such host").
func unreachable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// The cause tells the connector's timeout from an agent gone.
		return context.Cause(ctx)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("upstream timed out")
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return fmt.Errorf("upstream unreachable: %s", msg)
}

// params prepares an agent's params for the upstream: the agent's
// protocol _meta keys go, but for its log level and client capabilities,
// and a 2026-07-28 upstream gets the gateway's protocol version and
// client info. The capabilities are what the agent declared, since it is
// the agent that answers an input-required result, and the level what it
// asked for; a legacy agent's request has neither in its _meta, and agent
// gives its session's, if any.
func (u *upstream) params(st *upstreamState, params []byte, agent agentMeta) []byte {
	// The hot path: a legacy request without protocol _meta goes as is,
	// with no copy.
	if !st.modern && !bytes.Contains(params, []byte(gatewayMetaPrefix)) {
		return params
	}
	if len(params) == 0 {
		params = []byte(`{}`)
	}
	meta := member(params, "_meta")
	out := []byte{'{'}
	if len(meta) > 0 {
		_ = members(meta, func(key string, v span) bool {
			// A 2026-07-28 upstream sends log messages only for a request
			// that asks for a level, so the agent's level goes on.
			if !strings.HasPrefix(key, gatewayMetaPrefix) || (st.modern && (key == mcp.MetaKeyLogLevel || key == mcp.MetaKeyClientCapabilities)) {
				out = appendMember(out, key, meta[v.start:v.end])
			}
			return true
		})
	}
	if st.modern {
		out = appendMember(out, mcp.MetaKeyProtocolVersion, quote(st.version))
		out = appendMember(out, mcp.MetaKeyClientInfo, clientInfo)
		if member(meta, mcp.MetaKeyClientCapabilities) == nil {
			caps := []byte(`{}`)
			if len(agent.caps) > 0 {
				caps = agent.caps
			}
			out = appendMember(out, mcp.MetaKeyClientCapabilities, caps)
		}
		if agent.level != "" && member(meta, mcp.MetaKeyLogLevel) == nil {
			out = appendMember(out, mcp.MetaKeyLogLevel, quote(string(agent.level)))
		}
	}
	out = append(out, '}')
	// params passed the strict check, so setMember fails only on params
	// that are not an object, which the upstream is left to refuse.
	if next, err := setMember(params, "_meta", out); err == nil {
		return next
	}
	return params
}

// appendMember appends `"key":value` to an object under construction.
func appendMember(out []byte, key string, value []byte) []byte {
	if len(out) > 1 {
		out = append(out, ',')
	}
	out = append(out, quote(key)...)
	out = append(out, ':')
	return append(out, value...)
}

// readReply reads a single JSON answer and checks that it answers id.
func readReply(body io.Reader, length int64, id []byte) (*reply, error) {
	// A declared length is refused before reading; a body of unknown
	// length is read one byte past the limit, to tell "at the limit"
	// from "over it".
	if length > maxUpstreamMessage {
		return nil, errors.New("upstream answer is too large")
	}
	data, err := readAll(io.LimitReader(body, maxUpstreamMessage+1), length)
	if err != nil {
		return nil, fmt.Errorf("reading upstream answer: %v", err)
	}
	if len(data) > maxUpstreamMessage {
		return nil, errors.New("upstream answer is too large")
	}
	return parseReply(data, id)
}

// parseReply splits a JSON-RPC response into its result or error. A
// response that answers another id is refused, never passed on: on a
// shared connection it could be another agent's answer.
func parseReply(data, id []byte) (*reply, error) {
	if err := checkJSON(data); err != nil {
		return nil, fmt.Errorf("upstream sent invalid JSON: %v", err)
	}
	var rep reply
	var gotID json.RawMessage
	err := members(data, func(key string, v span) bool {
		switch key {
		case "id":
			gotID = data[v.start:v.end]
		case "result":
			rep.result = data[v.start:v.end]
		case "error":
			rep.err = data[v.start:v.end]
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("upstream sent a message that is not a JSON-RPC response")
	}
	if !bytes.Equal(gotID, id) {
		return nil, fmt.Errorf("upstream answered request %s, not %s", gotID, id)
	}
	if rep.result == nil && rep.err == nil {
		return nil, errors.New("upstream response has neither result nor error")
	}
	return &rep, nil
}

// readStream reads an SSE answer: notifications go to r's sink, requests
// from the upstream to r's agent, and the response to id ends it. A
// request is answered on a goroutine of its own, since the agent may take
// minutes and the stream must be read meanwhile; its bytes are cloned
// because readEvents reuses its buffer for the next event.
func (u *upstream) readStream(ctx context.Context, cred http.Header, st *upstreamState, body io.Reader, id []byte, r *rpc) (*reply, error) {
	var answer *reply
	err := readEvents(body, func(data []byte) bool {
		kind, method, msgID := classify(data)
		switch kind {
		case kindNotification:
			u.notified(data, method, r.sink, st.modern)
		case kindRequest:
			data, msgID := bytes.Clone(data), bytes.Clone(msgID)
			u.detach(func(life context.Context) { u.upstreamRequest(life, ctx, cred, st, data, msgID, method, r.ask) })
		case kindResponse:
			if bytes.Equal(msgID, id) {
				answer, _ = parseReply(data, id)
				return answer == nil
			}
			// Checked first, so that a call whose stream is clean builds no
			// field when debug logging is off, as on every production path.
			if ce := u.logger.Check(zapcore.DebugLevel, "dropped an unsolicited upstream response"); ce != nil {
				ce.Write(zap.String("connector", u.conn.ID))
			}
		}
		return true
	})
	if answer != nil {
		return answer, nil
	}
	if err != nil {
		return nil, unreachable(ctx, err)
	}
	return nil, errors.New("upstream ended the stream without answering")
}

// seen passes a notification's method on to the mux.
func (u *upstream) seen(method string) {
	if u.onNotify != nil {
		u.onNotify(u, method)
	}
}

// notified acts on a notification from any of the upstream's streams:
// progress goes to the request whose token it carries, wherever it came
// from; anything else goes to the agent of the request whose stream it came
// on (sink, nil on the notification stream) only when that stream is the
// request's own (ownStream: a stateless request). A legacy session may
// hand any of its notifications to any of its streams, so from one only
// progress, which carries a routable token, is relayed as such, and the
// rest go where inflight says. The mux sees every method.
func (u *upstream) notified(data []byte, method string, sink notifySink, ownStream bool) {
	u.seen(method)
	switch {
	case method == progressMethod:
		if !u.progress.deliver(data) {
			if ce := u.logger.Check(zapcore.DebugLevel, "dropped progress for no request in flight"); ce != nil {
				ce.Write(zap.String("connector", u.conn.ID))
			}
		}
	case method == mcp.MethodNotificationResourceUpdated:
		// Routed by URI to the subscribed agents, never as sent: it names
		// the upstream's URI and subscription.
		if uri, ok := stringMember(member(data, "params"), "uri"); ok && u.onUpdated != nil {
			u.onUpdated(u, uri)
		}
	case strings.HasSuffix(method, "/list_changed"):
	case sink != nil && ownStream:
		sink(data)
	case !ownStream:
		if r := u.calls.sole(); r != nil && r.sink != nil {
			r.sink(data)
		}
	}
}

// drain reads what is left of a body so its connection can be reused. Up
// to 64 KiB: past that, a new connection costs less than reading on.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

// appendEnvelope appends a JSON-RPC request (or a notification, when id is
// nil) to out.
func appendEnvelope(id []byte, method string, params []byte) []byte {
	out := make([]byte, 0, len(params)+len(method)+48)
	out = append(out, `{"jsonrpc":"2.0",`...)
	if id != nil {
		out = append(out, `"id":`...)
		out = append(out, id...)
		out = append(out, ',')
	}
	out = append(out, `"method":`...)
	out = appendQuote(out, method)
	if len(params) > 0 {
		out = append(out, `,"params":`...)
		out = append(out, params...)
	}
	return append(out, '}')
}

// errorMessage returns a JSON-RPC error object's message.
func errorMessage(errObj []byte) string {
	msg, _ := stringMember(errObj, "message")
	return msg
}

// clientInfo is how the gateway introduces itself to upstreams.
var clientInfo = []byte(`{"name":"mcpgate","version":"` + Version + `"}`)

// Version is the gateway's version, reported to agents and upstreams.
const Version = "0.1.0"
