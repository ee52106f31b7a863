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
// agent gets its own progress, under its own token, and never another's
// (MP-06), even when agents pick the same token.

// progressRoute is where one request's progress goes.
type progressRoute struct {
	token json.RawMessage // the agent's own token
	sink  notifySink
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
	id := "mcpgate-" + strconv.FormatInt(p.next.Add(1), 10)
	next, err := setMember(meta, "progressToken", quote(id))
	if err == nil {
		next, err = setMember(params, "_meta", next)
	}
	if err != nil {
		return params, func() {}
	}
	p.m.Store(id, &progressRoute{token: token, sink: sink})
	return next, func() { p.m.Delete(id) }
}

// deliver passes a progress notification to the request whose token it
// carries, with the agent's own token put back. It reports false when the
// token is not one of a request in flight.
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
	r.sink(next)
	return true
}
