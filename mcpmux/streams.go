package mcpmux

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// heartbeat keeps idle notification streams from being cut by proxies
// and client idle timeouts (Streamable HTTP, "Receiving Messages"), many of
// which close a silent connection after 60 seconds.
const heartbeat = 30 * time.Second

// listener is an agent's open notification stream: a legacy GET stream or
// a 2026-07-28 subscriptions/listen.
type listener struct {
	caller grants.Caller
	scope  string
	kinds  map[*listKind]bool
	subID  []byte // the subscriptions/listen request's id, for 2026-07-28
	// events is buffered, and its senders drop what does not fit: an
	// agent that reads slowly misses notices (it will see the change on
	// its next list) and never holds up the gateway's announcements.
	events chan []byte
	ended  <-chan struct{} // a legacy stream's session's; nil for listen

	// pending are the lists whose change the agent is yet to be told of,
	// and wake wakes the stream when the first is added (notify.go):
	// list changes are coalesced rather than queued, so none is ever
	// dropped and none is sent twice in a burst.
	mu      sync.Mutex
	pending []*listKind
	wake    chan struct{}
}

// Bounds on open notification streams, which each hold a goroutine and a
// connection for as long as the agent likes: per caller, so that no one
// exhausts the gateway's share, and in all.
const (
	maxStreamsPerCaller = 16
	maxStreams          = 10000
	// streamRetryAfter is the Retry-After of a refused stream.
	streamRetryAfter = 30 * time.Second
)

// listeners is the set of open notification streams.
type listeners struct {
	mu       sync.Mutex
	set      map[*listener]struct{}
	byCaller map[string]int
	// perCaller and max are the bounds; tests lower them.
	perCaller, max int
}

// add opens l, or refuses it with an error that names the bound it meets.
func (ls *listeners) add(l *listener) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.set == nil {
		ls.set, ls.byCaller = map[*listener]struct{}{}, map[string]int{}
	}
	perCaller, max := cmp.Or(ls.perCaller, maxStreamsPerCaller), cmp.Or(ls.max, maxStreams)
	switch {
	case ls.byCaller[l.caller.ID] >= perCaller:
		return fmt.Errorf("you hold %d open notification streams, the most one caller may: close one first", perCaller)
	case len(ls.set) >= max:
		return fmt.Errorf("the gateway holds its limit of %d open notification streams: try again later", max)
	}
	ls.set[l] = struct{}{}
	ls.byCaller[l.caller.ID]++
	return nil
}

// remove closes l, once however often it is called.
func (ls *listeners) remove(l *listener) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, ok := ls.set[l]; !ok {
		return
	}
	delete(ls.set, l)
	if ls.byCaller[l.caller.ID]--; ls.byCaller[l.caller.ID] == 0 {
		delete(ls.byCaller, l.caller.ID)
	}
}

// each calls fn with every open stream, under the lock: fn must be quick
// and must not open or close a stream.
func (ls *listeners) each(fn func(*listener)) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for l := range ls.set {
		fn(l)
	}
}

// stream sends a listener's events as server-sent events until the agent
// goes away or its Streams closes: a Mux's own closes with the Mux, a
// shared one outlives it (Options.Streams). first, when set, is sent
// before all.
func (m *Mux) stream(w http.ResponseWriter, r *http.Request, l *listener, first []byte) {
	l.wake = make(chan struct{}, 1)
	if err := m.streams.add(l); err != nil {
		refuseStream(w, l, err)
		return
	}
	defer m.streams.remove(l)
	sse := newSSE(w)
	// The acknowledgement goes first, before any notice (Subscriptions,
	// "Acknowledgment"); a legacy stream has none, and is flushed so that
	// the agent sees it open at once.
	if first != nil {
		sse.send(first)
	} else {
		sse.flush()
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var flush <-chan time.Time // armed by a first list change, for coalesce
	for {
		select {
		case msg := <-l.events:
			if sse.send(msg) != nil {
				return
			}
		case <-l.wake:
			if flush == nil {
				flush = time.After(coalesce)
			}
		case <-flush:
			flush = nil
			for _, msg := range l.take() {
				if sse.send(msg) != nil {
					return
				}
			}
		case <-tick.C:
			if sse.comment() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-m.streams.done:
			return
		case <-l.ended:
			return
		}
	}
}

// refuseStream answers a stream that a bound refuses with 503 and
// Retry-After: as a JSON-RPC error for subscriptions/listen, as a JSON
// error for a legacy GET.
func refuseStream(w http.ResponseWriter, l *listener, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(int(streamRetryAfter/time.Second)))
	if l.subID != nil {
		writeRPCError(w, http.StatusServiceUnavailable, l.subID, &rpcError{Code: codeSessionLimit, Message: err.Error()})
		return
	}
	writeHTTPError(w, http.StatusServiceUnavailable, err.Error())
}

// listen serves subscriptions/listen (2026-07-28): an event stream that
// first acknowledges the subscriptions the gateway set up, then carries
// the list_changed notifications the agent opted in to.
func (m *Mux) listen(x *exchange, msg *message) {
	var p struct {
		Notifications struct {
			Tools     bool `json:"toolsListChanged"`
			Prompts   bool `json:"promptsListChanged"`
			Resources bool `json:"resourcesListChanged"`
		} `json:"notifications"`
	}
	_ = json.Unmarshal(msg.params, &p)
	n := p.Notifications
	l := &listener{caller: x.caller, scope: x.scope, subID: msg.id, events: make(chan []byte, 16),
		kinds: map[*listKind]bool{toolsKind: n.Tools, promptsKind: n.Prompts, resourcesKind: n.Resources}}
	// The acknowledgement names what the gateway will send: the list
	// changes asked for, and nothing it does not support, such as
	// resourceSubscriptions: unsupported types are left out, and the
	// client is to check what was agreed (Subscriptions, "Acknowledgment").
	agreed := map[string]bool{}
	for name, on := range map[string]bool{"toolsListChanged": n.Tools, "promptsListChanged": n.Prompts, "resourcesListChanged": n.Resources} {
		if on {
			agreed[name] = true
		}
	}
	ack, _ := json.Marshal(agreed)
	first := []byte(`{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":` +
		string(ack) + `,"_meta":{"` + mcp.MetaKeySubscriptionID + `":` + string(msg.id) + `}}}`)
	m.stream(x.rs.w, x.r, l, first)
}

// event builds a listener's notification of a changed list.
func (l *listener) event(kind *listKind) []byte {
	if l.subID == nil {
		return []byte(`{"jsonrpc":"2.0","method":"` + kind.changed + `"}`)
	}
	return []byte(`{"jsonrpc":"2.0","method":"` + kind.changed + `","params":{"_meta":{"` +
		mcp.MetaKeySubscriptionID + `":` + string(l.subID) + `}}}`)
}
