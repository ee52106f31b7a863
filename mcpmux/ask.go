package mcpmux

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// An upstream may need input from the agent while it works on a request:
// an elicitation, a sampling, the roots. A legacy upstream asks with a
// request of its own on the request's event stream; a 2026-07-28 upstream
// answers with an input-required result, and the request is sent again
// with the answers. The gateway carries either to the agent of the
// request, and only to it: a legacy agent gets the question as a request
// on its own request's event stream and posts the answer back to its
// session; a 2026-07-28 agent gets an input-required result.

// askFunc asks the agent of one request for input, and returns its
// result or the error it answered with.
type askFunc func(ctx context.Context, method string, params []byte) (json.RawMessage, *rpcError)

// Bounds on the gateway's questions to legacy agents.
const (
	// maxPendingAsks is how many questions one session may have open.
	// Each holds an upstream request and a goroutine until the agent
	// answers, and an agent that never answers must not pile them up.
	maxPendingAsks = 16
	// maxInputRounds bounds how often one request may need input, so
	// that an upstream that asks forever cannot hold the request forever.
	maxInputRounds = 10
	// askIDPrefix begins the ids of the gateway's requests to agents, so
	// that they never meet the ids of the agent's own.
	askIDPrefix = "mcpgate-ask-"
)

// asks are a legacy session's open questions to its agent, by request id.
type asks struct {
	mu      sync.Mutex
	next    int64
	waiting map[string]chan []byte
}

// open starts a question and returns its id (as JSON) and where its answer
// arrives; false when too many are open.
func (a *asks) open() ([]byte, chan []byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiting) >= maxPendingAsks {
		return nil, nil, false
	}
	if a.waiting == nil {
		a.waiting = map[string]chan []byte{}
	}
	a.next++
	id := quote(askIDPrefix + strconv.FormatInt(a.next, 10))
	// Buffered for the one answer: answer never blocks, even when the
	// asker has stopped waiting (its request ended) and will never read.
	ch := make(chan []byte, 1)
	a.waiting[string(id)] = ch
	return id, ch, true
}

// close forgets a question.
func (a *asks) close(id []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.waiting, string(id))
}

// answer delivers an agent's response to the question with its id. A
// response to no open question is dropped.
func (a *asks) answer(id, msg []byte) {
	// Deleted under the lock, so that only the first answer to an id is
	// sent and the channel's one slot always has room for it.
	a.mu.Lock()
	ch, ok := a.waiting[string(id)]
	delete(a.waiting, string(id))
	a.mu.Unlock()
	if ok {
		ch <- msg
	}
}

// asker returns how to ask this request's agent for input, or nil when it
// cannot be asked: a 2026-07-28 agent is asked through its parked call
// (park.go), a legacy agent on its answer stream, which needs a session
// and an event stream.
func (x *exchange) asker() askFunc {
	switch {
	case x.park != nil:
		return x.park.ask
	case x.modern || x.session == nil || !x.rs.canSSE:
		return nil
	}
	return x.askLegacy
}

// askLegacy puts a question to a legacy agent on its request's event
// stream and waits for the answer it posts to its session. An agent that
// did not declare the capability the question needs is not asked.
func (x *exchange) askLegacy(ctx context.Context, method string, params []byte) (json.RawMessage, *rpcError) {
	// One upstream session serves every agent and declares every
	// capability (relayCapabilities), so the gateway, not the upstream,
	// must hold each agent to what it declared.
	name, need := requiredCapability(appendEnvelope(nil, method, params))
	if name == "" || !declares(x.session.caps, name, need) {
		return nil, errorf(codeMethodNotFound, "the agent did not declare that it can answer %s", method)
	}
	id, answer, ok := x.session.asks.open()
	if !ok {
		return nil, errorf(codeInternalError, "the agent has %d questions open already", maxPendingAsks)
	}
	defer x.session.asks.close(id)
	if !x.rs.request(ctx, appendEnvelope(id, method, params)) {
		return nil, errorf(codeInternalError, "the agent's answer stream has ended")
	}
	select {
	case msg := <-answer:
		if e := member(msg, "error"); e != nil {
			var re rpcError
			if json.Unmarshal(e, &re) != nil || re.Message == "" {
				re = rpcError{Code: codeInternalError, Message: "the agent declined " + method}
			}
			return nil, &re
		}
		return member(msg, "result"), nil
	case <-ctx.Done():
		return nil, errorf(codeInternalError, "the agent did not answer %s in time", method)
	case <-x.ctx.Done():
		return nil, errorf(codeInternalError, "the agent's request ended before it answered %s", method)
	}
}

// request relays a request to the agent, switching to SSE. Unlike a
// notification it is never dropped: it waits for room until ctx ends.
// It polls rather than blocking on the queue, because it must not hold
// rs.mu while it waits: respond takes that lock to end the answer.
func (rs *responder) request(ctx context.Context, msg []byte) bool {
	msg = append([]byte(nil), msg...)
	for {
		rs.mu.Lock()
		if rs.done || !rs.canSSE {
			rs.mu.Unlock()
			return false
		}
		rs.startSSE()
		select {
		case rs.queue <- msg:
			rs.mu.Unlock()
			return true
		default:
		}
		rs.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// fulfil answers a 2026-07-28 upstream's input-required result for a
// legacy agent: it asks the agent each question and sends the request
// again with the answers and the upstream's requestState, round after
// round, until the upstream completes.
func (m *Mux) fulfil(x *exchange, h func(*exchange, []byte) *reply, rep *reply) *reply {
	for round := 0; isInputRequired(rep); round++ {
		ask := x.asker()
		switch {
		case round == maxInputRounds:
			return failure(errorf(codeInternalError, "the upstream asked for input %d times: giving up", maxInputRounds))
		case ask == nil:
			return failure(errorf(codeInternalError, "the upstream needs input that this agent cannot give here: "+
				"it needs a session and an event stream (Accept: text/event-stream)"))
		}
		responses := []byte(`{}`)
		requests := member(rep.result, "inputRequests")
		var failed *rpcError
		_ = members(requests, func(key string, v span) bool {
			req := requests[v.start:v.end]
			method, _ := stringMember(req, "method")
			result, rerr := ask(x.ctx, method, member(req, "params"))
			if rerr != nil {
				failed = rerr
				return false
			}
			responses, _ = setMember(responses, key, result)
			return true
		})
		if failed != nil {
			return failure(failed)
		}
		// The retry carries the answers under the keys the upstream gave
		// and its requestState exactly as sent, or none when it sent none
		// (Multi Round-Trip Requests, "Client Requirements").
		params, _ := setMember(x.params, "inputResponses", responses)
		params, _ = setMember(params, "requestState", member(rep.result, "requestState"))
		rep = h(x, params)
	}
	return rep
}

// isInputRequired reports whether a reply is an input-required result.
func isInputRequired(rep *reply) bool {
	if rep == nil || rep.result == nil {
		return false
	}
	kind, _ := stringMember(rep.result, "resultType")
	return kind == string(mcp.ResultTypeInputRequired)
}

// relayable are the requests an upstream may put to an agent through the
// gateway: the three kinds of input request there are (Multi Round-Trip
// Requests, "Server Requirements"). Ping the gateway answers itself, and
// anything else is refused: an upstream gets no other way to the agent.
var relayable = map[string]bool{
	string(mcp.MethodElicitationCreate):     true,
	string(mcp.MethodSamplingCreateMessage): true,
	string(mcp.MethodListRoots):             true,
}

// inflight are the calls in flight on one legacy upstream session, for
// what the upstream sends that names no call: a request on its
// notification stream, and notifications other than progress on any of
// its streams (one session hands its notifications to whichever of its
// streams is open). These go to the one call in flight, when there is
// exactly one, and only on a session that has served one caller: on a
// session shared by several (a shared credential), a late message of one
// caller's call could otherwise reach another's.
type inflight struct {
	mu     sync.Mutex
	calls  map[*callRoute]bool
	first  string // the first caller the session served
	shared bool   // it has served another since
}

// callRoute is where one call's agent can be reached.
type callRoute struct {
	sink notifySink
	ask  askFunc
}

// add registers a call of caller until the returned func is called.
func (f *inflight) add(caller string, route callRoute) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls, f.first = map[*callRoute]bool{}, caller
	}
	f.shared = f.shared || caller != f.first
	p := &route
	f.calls[p] = true
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.calls, p)
	}
}

// sole returns the route of the one call in flight, or nil when there are
// none or several, or the session is shared.
func (f *inflight) sole() *callRoute {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 || f.shared {
		return nil
	}
	for p := range f.calls {
		return p
	}
	return nil
}

// soleAsker is sole's asker, or nil.
func (f *inflight) soleAsker() askFunc {
	if r := f.sole(); r != nil {
		return r.ask
	}
	return nil
}

// upstreamRequest answers a request an upstream sent: ping at once, an
// input request by asking the agent, anything else, or with no agent to
// ask, with an error, so that the upstream is never left waiting. It
// ends with the Mux (life) too: the agent's answer is then not awaited,
// nor the upstream's receipt of the gateway's.
func (u *upstream) upstreamRequest(life, ctx context.Context, cred http.Header, st *upstreamState, data, id []byte, method string, ask askFunc) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(life, stop)()
	var msg []byte
	switch {
	case method == string(mcp.MethodPing):
		msg = []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":{}}`)
	case relayable[method] && ask != nil:
		result, rerr := ask(ctx, method, member(data, "params"))
		if rerr != nil {
			e, _ := json.Marshal(rerr)
			msg = []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"error":` + string(e) + `}`)
		} else {
			msg = []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + string(result) + `}`)
		}
	default:
		msg = []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"error":{"code":-32601,"message":` +
			string(quote("mcpgate has no agent to relay "+method+" to")) + `}}`)
	}
	// The answer goes even when the stream it was asked on has ended,
	// since the upstream waits for it either way; but within a bound, so
	// that a dead upstream holds no goroutine.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	defer context.AfterFunc(life, cancel)()
	resp, err := u.post(ctx, cred, st, msg, &rpc{})
	if err == nil {
		drain(resp.Body)
	}
}

// sessionMeta is what a legacy agent's session holds for a 2026-07-28
// upstream: its declared capabilities, so that the upstream asks only for
// input the agent can give, and its log level or, with none set, every
// level, as a legacy upstream's default sends.
func (x *exchange) sessionMeta() agentMeta {
	if x.modern || x.session == nil {
		return agentMeta{}
	}
	level := x.session.logLevel()
	if level == "" {
		level = mcp.LoggingLevelDebug
	}
	return agentMeta{caps: x.session.caps, level: level}
}
