package mcpmux

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
)

// progressMethod is the notification that reports a request's progress.
const progressMethod = "notifications/progress"

// A progress notification names its request only by the token the request
// chose. Agents share upstream connections, and a legacy upstream session
// hands each notification to whichever of its streams reads first: a
// concurrent agent's POST, or the gateway's own notification stream. So
// the gateway gives every request a token of its own and routes by it: an
// agent gets its own progress, under its own token, and never another's,
// even when agents pick the same token.
//
// That same sharing scatters one request's progress over several streams
// (mcp-go hands a session's notifications to whichever stream's forwarder
// takes them first), each read by its own goroutine here, so two of them
// can reach the route in the opposite order to the one the upstream sent
// them in. Nothing on the wire says which came first except the value:
// progress must increase with each notification (MCP basic/utilities/
// progress). So a route delivers one at a time and drops one that arrives
// after a later one: the agent sees the upstream's order, and an old
// progress report is worth nothing once a newer one is in.

// progressRoute is where one request's progress goes.
type progressRoute struct {
	token json.RawMessage // the agent's own token
	sink  notifySink

	// mu orders deliveries: last is the highest progress delivered, and
	// any says whether there was one.
	mu   sync.Mutex
	last float64
	any  bool
}

// progressRoutes maps the gateway's tokens to the requests in flight.
type progressRoutes struct {
	next atomic.Int64
	m    sync.Map // gateway token → *progressRoute
}

// track gives the progress token in params, if any, a gateway-unique one
// that routes to sink. It returns the params to send and a func that
// forgets the route once the request is answered.
func (p *progressRoutes) track(params []byte, sink notifySink) ([]byte, func()) {
	meta := member(params, "_meta")
	token := member(meta, "progressToken")
	if token == nil {
		return params, func() {}
	}
	// Unique on this upstream connection, which is what shares the
	// streams; a string, whatever type the agent's token was.
	id := "mcpgate-" + strconv.FormatInt(p.next.Add(1), 10)
	next, err := setMember(meta, "progressToken", quote(id))
	if err == nil {
		next, err = setMember(params, "_meta", next)
	}
	// params that cannot take the token are sent as they are: the call
	// works, and only its progress is lost.
	if err != nil {
		return params, func() {}
	}
	p.m.Store(id, &progressRoute{token: token, sink: sink})
	return next, func() { p.m.Delete(id) }
}

// deliver passes a progress notification to the request whose token it
// carries, with the agent's own token put back, unless it arrived after a
// later one. It reports false when the token is not one of a request in
// flight.
func (p *progressRoutes) deliver(msg []byte) bool {
	params := member(msg, "params")
	id, ok := stringMember(params, "progressToken")
	if !ok {
		return false
	}
	v, ok := p.m.Load(id)
	if !ok {
		return false
	}
	r := v.(*progressRoute)
	next, err := setMember(params, "progressToken", r.token)
	if err == nil {
		next, err = setMember(msg, "params", next)
	}
	if err != nil || r.sink == nil {
		return false
	}
	// The sink is called under the lock, so that the check and the
	// delivery are one step; it only queues (responder.notify), so the
	// lock is held for no I/O.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.advance(member(params, "progress")) {
		r.sink(next)
	}
	return true
}

// advance reports whether a notification with the given progress value
// keeps the route's order, and records it. A value that is not a number
// cannot be ordered and goes through as the upstream sent it.
func (r *progressRoute) advance(raw []byte) bool {
	p, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return true
	}
	if r.any && p < r.last {
		return false
	}
	r.last, r.any = p, true
	return true
}
