package mcpmux

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// A 2026-07-28 agent is not asked anything mid-request: it gets an
// input-required result and sends the request again with the answers. A
// legacy upstream asks mid-request and waits for the answer. The gateway
// bridges the two by parking the upstream call: it goes on running, its
// question goes to the agent in an input-required result whose sealed
// requestState names the parked call, and the agent's retry hands the
// answer to the call and waits for its next question or its result.

// Bounds on parked calls.
const (
	// parkTTL is how long a call may wait for its agent's answers: time
	// for a person to read a question and answer it, yet short, since a
	// parked call holds a goroutine and an open upstream request.
	parkTTL = 10 * time.Minute
	// maxParkedPerCaller and maxParked bound the parked calls, which each
	// hold a goroutine and an upstream request.
	maxParkedPerCaller = 16
	maxParked          = 1024
	// relayKeyPrefix begins the inputRequests keys of relayed questions.
	relayKeyPrefix = gatewayInputPrefix + "relay-"
)

// parked is a 2026-07-28 agent's call that its upstream interrupted with a
// question.
type parked struct {
	id     string
	caller string
	caps   []byte // the client capabilities the agent declared
	// questions come from the upstream call; done is its final reply.
	// questions is unbuffered, a hand-over: the call's ask waits until
	// an agent request is there to take the question. done has room for
	// the one reply, so that the call's goroutine ends even when no
	// request waits for it any more (the agent never retried).
	questions chan *question
	done      chan *reply
	cancel    context.CancelFunc
	// busy lets one retry at a time wait for the call; pending is the
	// question the agent was last given. Two retries at once would both
	// read pending, and hand the call two answers to one question.
	busy    sync.Mutex
	pending *question
	// rounds counts the questions asked. Atomic: an upstream may ask
	// several at once, and each is asked on a goroutine of its own
	// (readStream), so each must get a number, and a key, of its own.
	rounds atomic.Int32
}

// question is one request of the upstream's, put to the agent.
type question struct {
	key      string
	method   string
	params   json.RawMessage
	answer   chan json.RawMessage
	answered bool
}

// parkedCalls holds the parked calls by id.
type parkedCalls struct {
	mu       sync.Mutex
	byID     map[string]*parked
	byCaller map[string]int
}

// add registers p, or reports false at a bound.
func (pc *parkedCalls) add(p *parked) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.byID == nil {
		pc.byID, pc.byCaller = map[string]*parked{}, map[string]int{}
	}
	if len(pc.byID) >= maxParked || pc.byCaller[p.caller] >= maxParkedPerCaller {
		return false
	}
	pc.byID[p.id] = p
	pc.byCaller[p.caller]++
	return true
}

// remove forgets p.
func (pc *parkedCalls) remove(p *parked) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.byID[p.id] != p {
		return
	}
	delete(pc.byID, p.id)
	if pc.byCaller[p.caller]--; pc.byCaller[p.caller] <= 0 {
		delete(pc.byCaller, p.caller)
	}
}

// get returns the parked call id of caller, or nil. The sealed state
// already binds the id to its caller; this check keeps a call to its
// owner even if an id were ever to leak some other way.
func (pc *parkedCalls) get(id, caller string) *parked {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if p := pc.byID[id]; p != nil && p.caller == caller {
		return p
	}
	return nil
}

// parkable runs a 2026-07-28 agent's request in a call that can be parked:
// on its own context, so that it outlives the agent's HTTP request once
// parked, yet is cancelled with it until then.
func (m *Mux) parkable(x *exchange, h func(*exchange, []byte) *reply) *reply {
	// WithoutCancel keeps the request's values but not its end, which
	// await watches instead: before the call is parked, the agent going
	// away cancels it; after, only parkTTL or the Mux does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), parkTTL)
	// A parked call outlives its request, not the Mux.
	unlink := context.AfterFunc(m.ctx, cancel)
	p := &parked{
		caller:    x.caller.ID,
		caps:      member(member(x.params, "_meta"), mcp.MetaKeyClientCapabilities),
		questions: make(chan *question), done: make(chan *reply, 1), cancel: cancel,
	}
	detached := *x
	detached.ctx, detached.park = ctx, p
	go func() { p.done <- h(&detached, x.params) }()
	// However the call ends (its reply, parkTTL, Close), its entry goes,
	// so that an expired requestState finds nothing.
	var registered atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		unlink()
		if registered.Load() {
			m.parked.remove(p)
		}
	})
	rep := m.await(x, p, func() bool {
		// Named only now: a call that is never parked needs no id.
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		p.id = hex.EncodeToString(id)
		if !m.parked.add(p) {
			return false
		}
		registered.Store(true)
		return true
	})
	// Never parked: the call is over (or given up), and nothing of it
	// may outlive this request.
	if !registered.Load() {
		stop()
		unlink()
		cancel()
	}
	return rep
}

// await waits, for the agent's request x, for the parked call's next
// question or its result. register, on the first question, keeps the call
// for the retry; when it cannot, the call is given up.
func (m *Mux) await(x *exchange, p *parked, register func() bool) *reply {
	select {
	case rep := <-p.done:
		p.cancel()
		return rep
	case q := <-p.questions:
		// Set before the call is registered, which is what orders it
		// before any retry's read.
		p.pending = q
		if register != nil && !register() {
			p.cancel()
			return failure(errorf(codeInternalError, "the gateway holds too many calls waiting for answers: answer those first"))
		}
		return m.questionFor(x, p, q)
	case <-x.ctx.Done():
		// A retry that goes away leaves the call parked for the next
		// retry, until parkTTL.
		if register != nil {
			p.cancel() // not parked yet: the agent cancelled its call
		}
		return failure(errorf(codeInternalError, "the request ended before the upstream answered"))
	}
}

// questionFor is the input-required result that puts q to the agent. Its
// requestState is sealed and names the caller, the request (method and
// name) and an expiry, which takeState checks: an agent must treat the
// state as opaque, and the gateway must treat it as hostile (Multi
// Round-Trip Requests, "Server Requirements": integrity, principal, TTL
// and originating request).
func (m *Mux) questionFor(x *exchange, p *parked, q *question) *reply {
	name, _ := stringMember(x.params, nameKey(x.method))
	state := m.states.seal(x.caller.ID, gatewayState{
		Method: x.method, Name: name, Parked: p.id, Key: q.key, Expires: m.now().Add(parkTTL).Unix(),
	})
	result, _ := json.Marshal(map[string]any{
		"resultType":    mcp.ResultTypeInputRequired,
		"inputRequests": map[string]any{q.key: map[string]any{"method": q.method, "params": q.params}},
		"requestState":  state,
	})
	return &reply{result: result}
}

// resume serves the retry of a parked call: it hands the agent's answer to
// the question it was given to the call and waits for what comes next. A
// retry without the answer gets the question again.
func (m *Mux) resume(x *exchange, st gatewayState, params []byte) *reply {
	p := m.parked.get(st.Parked, x.caller.ID)
	if p == nil {
		return failure(errorf(codeInvalidParams, "requestState names a call that has ended or expired: send the request again without it"))
	}
	if !p.busy.TryLock() {
		return failure(errorf(codeInvalidRequest, "another retry of this call is waiting already"))
	}
	defer p.busy.Unlock()
	// Only an answer to the question last given counts: a retry with an
	// older requestState answers nothing and just waits for what comes.
	q := p.pending
	if q != nil && q.key == st.Key && !q.answered {
		answer := member(member(params, "inputResponses"), q.key)
		// A retry without the answer is asked again, not failed (Multi
		// Round-Trip Requests, "Error Handling").
		if answer == nil {
			return m.questionFor(x, p, q)
		}
		q.answered = true
		q.answer <- answer
	}
	return m.await(x, p, nil)
}

// ask puts an upstream's question to the parked call's agent, as an
// input-required result, and waits for the answer its retry brings. A
// question the agent did not declare it can answer is refused.
func (p *parked) ask(ctx context.Context, method string, params []byte) (json.RawMessage, *rpcError) {
	name, need := requiredCapability(appendEnvelope(nil, method, params))
	if name == "" || !declares(p.caps, name, need) {
		return nil, errorf(codeMethodNotFound, "the agent did not declare that it can answer %s", method)
	}
	round := int(p.rounds.Add(1))
	if round > maxInputRounds {
		return nil, errorf(codeInternalError, "the agent was asked %d times: giving up", maxInputRounds)
	}
	q := &question{key: relayKeyPrefix + strconv.Itoa(round), method: method, params: params, answer: make(chan json.RawMessage, 1)}
	select {
	case p.questions <- q:
	case <-ctx.Done():
		return nil, errorf(codeInternalError, "the agent was not asked %s in time", method)
	}
	select {
	case a := <-q.answer:
		return a, nil
	case <-ctx.Done():
		return nil, errorf(codeInternalError, "the agent did not answer %s in time", method)
	}
}
