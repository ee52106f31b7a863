package mcpmux

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Resource subscriptions of legacy agents (resources/subscribe, up to
// protocol version 2025-11-25): each is routed to the upstream that serves
// the URI, as resources/read is, and checked against the grants when it is
// made and again whenever an update is delivered. Upstreams share one
// subscription per (connector, credential) and URI, however many agent
// sessions hold it. Like the sessions, the subscriptions outlive the Mux
// that made them: they live in its Streams, and the Mux that replaces it
// holds them at its own upstreams (handover.go).

// Bounds on resource subscriptions, which each cost the gateway memory and
// the upstream a subscription: per agent session, and per upstream
// connection, whose 2026-07-28 subscriptions/listen names them all.
const (
	maxSubscriptionsPerSession  = 256
	maxSubscriptionsPerUpstream = 4096
)

// legacyCapabilities is what the gateway offers a legacy agent: the
// capabilities of every era and resources/subscribe, which protocol
// version 2026-07-28 replaced with subscriptions/listen.
const legacyCapabilities = `{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"prompts":{"listChanged":true},"completions":{}}`

// subscription is one agent session's subscription to one resource,
// held at an upstream of mux.
type subscription struct {
	session *session
	mux     *Mux
	conn    *connectors.Connector
	up      *upstream
	// uri is the resource as its upstream names it; agentURI as the agent
	// subscribed to it, the mcpgate://<id>/ form included, which is how
	// its updates name it.
	uri, agentURI string
}

// subscriptions are the resource subscriptions of the sessions of a
// Streams, by agent session and by upstream resource: the first to end a
// session's subscriptions, the second to find who gets an update. Both
// change under one lock, so that they always agree. Keyed by upstream
// connection, which is per credential and per Mux: an update seen with
// one user's token goes to that user's subscribers only.
type subscriptions struct {
	mu        sync.Mutex
	bySession map[*session]map[string]*subscription
	byURI     map[*upstream]map[string]map[*subscription]bool
}

// add records sub, in the place of old when old is not nil: a
// subscription another Mux held, which sub's Mux now holds instead. It
// reports whether sub is the first for its upstream resource, which the
// upstream must then be asked for, and whether it is its session's first,
// whose end must then be watched. Past a bound it fails; so does a
// subscription of a Mux that has closed, which would be held nowhere, and
// the move of one the agent ended meanwhile. A subscription the session
// already holds is no new one.
func (s *subscriptions) add(sub, old *subscription) (firstAtUpstream, firstOfSession bool, err *rpcError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySession == nil {
		s.bySession, s.byURI = map[*session]map[string]*subscription{}, map[*upstream]map[string]map[*subscription]bool{}
	}
	mine := s.bySession[sub.session]
	if held := mine[sub.agentURI]; held != old {
		if old == nil {
			return false, false, nil
		}
		return false, false, errorf(codeInvalidRequest, "the subscription to %s ended while it moved", sub.agentURI)
	}
	if err := s.admit(sub, old, mine); err != nil {
		return false, false, err
	}
	if old != nil {
		s.unlink(old)
	}
	at := s.byURI[sub.up]
	if mine = s.bySession[sub.session]; mine == nil {
		mine = map[string]*subscription{}
		s.bySession[sub.session] = mine
	}
	if at == nil {
		at = map[string]map[*subscription]bool{}
		s.byURI[sub.up] = at
	}
	if at[sub.uri] == nil {
		at[sub.uri] = map[*subscription]bool{}
	}
	mine[sub.agentURI] = sub
	at[sub.uri][sub] = true
	return len(at[sub.uri]) == 1, len(mine) == 1 && old == nil, nil
}

// admit checks that sub, of a session holding mine, may be recorded in
// place of old (nil for a new one); s.mu must be held. Its Mux is checked
// under the lock that a handover takes to list a closing Mux's
// subscriptions, so that none is added after that list and lost.
func (s *subscriptions) admit(sub, old *subscription, mine map[string]*subscription) *rpcError {
	select {
	case <-sub.mux.closed:
		return errorf(codeInternalError, "the gateway's configuration changed during the subscription: subscribe again")
	default:
	}
	if old == nil && len(mine) >= maxSubscriptionsPerSession {
		return errorf(codeSessionLimit, "this session holds %d resource subscriptions, the most one session may: unsubscribe from one first", maxSubscriptionsPerSession)
	}
	// Only a URI the upstream is not yet watching counts against its
	// bound: another session joining a watched one costs it nothing.
	at := s.byURI[sub.up]
	if len(at[sub.uri]) == 0 && len(at) >= maxSubscriptionsPerUpstream {
		return errorf(codeSessionLimit, "connector %s holds its limit of %d subscribed resources: try again later", sub.conn.ID, maxSubscriptionsPerUpstream)
	}
	return nil
}

// get returns the subscription of ss to agentURI, or nil.
func (s *subscriptions) get(ss *session, agentURI string) *subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySession[ss][agentURI]
}

// remove forgets sub, and reports whether it was the last of its upstream
// resource, which the upstream can then forget too.
func (s *subscriptions) remove(sub *subscription) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySession[sub.session][sub.agentURI] != sub {
		return false
	}
	return s.unlink(sub)
}

// unlink forgets sub, which s holds, and reports whether it was the last
// of its upstream resource; s.mu must be held.
func (s *subscriptions) unlink(sub *subscription) (last bool) {
	mine := s.bySession[sub.session]
	delete(mine, sub.agentURI)
	if len(mine) == 0 {
		delete(s.bySession, sub.session)
	}
	at := s.byURI[sub.up]
	delete(at[sub.uri], sub)
	if len(at[sub.uri]) > 0 {
		return false
	}
	delete(at, sub.uri)
	if len(at) == 0 {
		delete(s.byURI, sub.up)
	}
	return true
}

// watched reports whether a subscription holds uri at u.
func (s *subscriptions) watched(u *upstream, uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byURI[u][uri]) > 0
}

// others returns the subscriptions that Muxes other than m hold at their
// upstreams: those m takes over when it serves in their place.
func (s *subscriptions) others(m *Mux) []*subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*subscription
	for _, mine := range s.bySession {
		for _, sub := range mine {
			if sub.mux != m {
				out = append(out, sub)
			}
		}
	}
	return out
}

// of returns the subscriptions to an upstream resource.
func (s *subscriptions) of(u *upstream, uri string) []*subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*subscription
	for sub := range s.byURI[u][uri] {
		out = append(out, sub)
	}
	return out
}

// session returns every subscription of ss.
func (s *subscriptions) session(ss *session) []*subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*subscription
	for _, sub := range s.bySession[ss] {
		out = append(out, sub)
	}
	return out
}

// subscribe serves resources/subscribe: the URI is resolved and its grant
// checked as for resources/read, so that a refusal reads the same, and the
// subscription is recorded on the agent's session.
func (m *Mux) subscribe(x *exchange, params []byte) *reply {
	uri, ok := stringMember(params, "uri")
	if !ok {
		return failure(errorf(codeInvalidParams, "params.uri must be a string"))
	}
	if x.session == nil {
		return failure(errorf(codeInvalidRequest, "resources/subscribe needs a session"))
	}
	return m.hold(x, uri, nil)
}

// hold subscribes x's session to uri at the upstream that serves it to
// x's caller here, in place of old when old is not nil (a subscription
// another Mux held, handover.go). It returns the agent's answer.
func (m *Mux) hold(x *exchange, uri string, old *subscription) *reply {
	c, orig, rep := m.routeURI(x, uri)
	if rep != nil {
		return rep
	}
	cred, err := m.credentialFor(x, c)
	if err != nil {
		return unavailable(x, c, err)
	}
	_, st, err := m.do(x.ctx, x.caller, c, &cred, eraAny, nil)
	if err != nil {
		return unavailable(x, c, err)
	}
	if !offersSubscribe(st.caps) {
		return failure(errorf(codeMethodNotFound, "connector %s does not offer resource subscriptions", c.ID))
	}
	// change is held across the upstream request, so that a subscribe and
	// an unsubscribe of one URI reach the upstream in the order they are
	// recorded here.
	u := m.upstream(c, cred)
	u.watch.change.Lock()
	defer u.watch.change.Unlock()
	sub := &subscription{session: x.session, mux: m, conn: c, up: u, uri: orig, agentURI: uri}
	first, firstOfSession, rerr := m.subs.add(sub, old)
	if rerr != nil {
		return failure(rerr)
	}
	if first {
		if rep := m.watchResource(x, u, &cred, st, orig); rep != nil {
			m.subs.remove(sub)
			return rep
		}
	}
	// One watcher per session that holds subscriptions, not per
	// subscription; it ends with the session or the Mux.
	if firstOfSession {
		m.watchSession(x.session)
	}
	return &reply{result: json.RawMessage(`{}`)}
}

// watchSession drops the subscriptions of ss when it ends, from now until
// m closes.
func (m *Mux) watchSession(ss *session) {
	m.background(func(ctx context.Context) { m.endWithSession(ctx, ss) })
}

// offersSubscribe reports whether an upstream's capabilities offer
// resource subscriptions.
func offersSubscribe(caps []byte) bool {
	return string(member(member(caps, "resources"), "subscribe")) == "true"
}

// watchResource asks the upstream for updates of uri: a legacy session by
// resources/subscribe, whose answer (an error included) is the agent's,
// a 2026-07-28 upstream by opening its subscriptions/listen again with the
// URI among its resourceSubscriptions. It returns nil on success.
func (m *Mux) watchResource(x *exchange, u *upstream, cred *Credential, st *upstreamState, uri string) *reply {
	u.watch.add(uri)
	if st.modern {
		u.relisten(cred.Header)
		return nil
	}
	rep, st, err := m.do(x.ctx, x.caller, u.conn, cred, eraLegacy, subscribeRPC("resources/subscribe", uri))
	switch {
	case err != nil:
		u.watch.drop(uri)
		return unavailable(x, u.conn, err)
	case rep.err != nil:
		u.watch.drop(uri)
		return rep
	}
	u.watch.subscribed(st, uri)
	if u.watch.streamState() != st {
		// The notification stream is on another connection: move it to
		// the session that holds the subscription.
		u.relisten(cred.Header)
	}
	return nil
}

// subscribeRPC is resources/subscribe or resources/unsubscribe of uri.
func subscribeRPC(method, uri string) *rpc {
	return &rpc{method: method, params: []byte(`{"uri":` + string(quote(uri)) + `}`), name: uri}
}

// unsubscribe serves resources/unsubscribe. Unsubscribing from what the
// session does not hold succeeds and does nothing, whatever the URI, so
// that the answer reveals nothing of other connectors or sessions. The
// Mux that holds the subscription ends it, which may be another than m:
// one that served before a reload, or after it.
func (m *Mux) unsubscribe(x *exchange, params []byte) *reply {
	uri, ok := stringMember(params, "uri")
	if !ok {
		return failure(errorf(codeInvalidParams, "params.uri must be a string"))
	}
	if x.session != nil {
		if sub := m.subs.get(x.session, uri); sub != nil {
			sub.mux.drop(x.ctx, x.caller, sub)
		}
	}
	return &reply{result: json.RawMessage(`{}`)}
}

// drop ends sub, which m holds, and the upstream's subscription when no
// agent session of its connection still holds it.
func (m *Mux) drop(ctx context.Context, caller grants.Caller, sub *subscription) {
	sub.up.watch.change.Lock()
	defer sub.up.watch.change.Unlock()
	if m.subs.remove(sub) {
		m.unwatch(ctx, caller, sub)
	}
}

// release ends m's hold of sub, which another Mux may have taken over
// already, and the upstream's subscription to its resource unless another
// session holds it there.
func (m *Mux) release(ctx context.Context, caller grants.Caller, sub *subscription) {
	sub.up.watch.change.Lock()
	defer sub.up.watch.change.Unlock()
	m.subs.remove(sub)
	if !m.subs.watched(sub.up, sub.uri) {
		m.unwatch(ctx, caller, sub)
	}
}

// unwatch ends the upstream's subscription to sub's resource, which no
// subscription holds any longer; its change lock must be held.
func (m *Mux) unwatch(ctx context.Context, caller grants.Caller, sub *subscription) {
	u := sub.up
	on, streamModern := u.watch.drop(sub.uri)
	if streamModern {
		u.relisten(nil)
	}
	if on == nil || u.legacy.Load() != on {
		return
	}
	// The upstream session is the connection's, whoever made it; the
	// credential is asked for again, as it may have been refreshed.
	cred, err := m.credential(ctx, CredentialRequest{Caller: caller, Connector: sub.conn})
	if err != nil || cred.Key != u.credKey {
		return
	}
	if _, err := u.exchange(ctx, cred.Header, on, subscribeRPC("resources/unsubscribe", sub.uri)); err != nil {
		if ce := m.logger.Check(zapcore.DebugLevel, "upstream resources/unsubscribe failed"); ce != nil {
			ce.Write(zap.String("connector", u.conn.ID), zap.Error(err))
		}
	}
}

// endWithSession drops the subscriptions of ss when it ends, however it
// ends: DELETE, idling out, or making way for its caller's newer session.
// Each is dropped by the Mux that holds it.
func (m *Mux) endWithSession(ctx context.Context, ss *session) {
	select {
	case <-ctx.Done():
		return
	case <-ss.ended:
	}
	for _, sub := range m.subs.session(ss) {
		sub.mux.drop(ctx, ss.caller, sub)
	}
}

// resourceUpdated relays an upstream's notifications/resources/updated to
// the agent sessions subscribed to it, off the upstream's stream, since
// checking the grants may fetch lists.
func (m *Mux) resourceUpdated(u *upstream, uri string) {
	subs := m.subs.of(u, uri)
	if len(subs) == 0 {
		return
	}
	m.background(func(ctx context.Context) {
		for _, sub := range subs {
			m.deliverUpdate(ctx, sub)
		}
	})
}

// deliverUpdate sends an update of sub's resource to the notification
// streams of its session, each only if its caller may still read the
// resource, at the same connector, with the same credential: grants and
// credentials may have changed since the subscription was made. A full
// stream drops the update.
func (m *Mux) deliverUpdate(ctx context.Context, sub *subscription) {
	var ls []*listener
	m.streams.each(func(l *listener) {
		// A legacy GET stream ends with its session, which names it.
		if l.ended == sub.session.ended {
			ls = append(ls, l)
		}
	})
	msg := []byte(`{"jsonrpc":"2.0","method":"` + mcp.MethodNotificationResourceUpdated +
		`","params":{"uri":` + string(quote(sub.agentURI)) + `}}`)
	for _, l := range ls {
		if !m.mayRead(ctx, l.caller, l.scope, sub) {
			continue
		}
		select {
		case l.events <- msg:
		default:
		}
	}
}

// mayRead reports whether caller, at the endpoint of scope, may read sub's
// resource as it subscribed to it: the URI routes to the same connector
// and resource, granted, and the caller's credential there is still the
// one whose upstream sent the update.
func (m *Mux) mayRead(ctx context.Context, caller grants.Caller, scope string, sub *subscription) bool {
	ctx, cancel := context.WithTimeout(ctx, credentialLookup)
	defer cancel()
	x := &exchange{ctx: ctx, caller: caller, view: m.view(caller), scope: scope}
	c, orig, rep := m.routeURI(x, sub.agentURI)
	if rep != nil || c.ID != sub.conn.ID || orig != sub.uri {
		return false
	}
	cred, err := m.credentialFor(x, c)
	return err == nil && cred.Key == sub.up.credKey
}

// resourceWatch is an upstream connection's side of the subscriptions: the
// resources it is asked to watch, and where they are subscribed.
type resourceWatch struct {
	// change orders the changes to the set with their upstream requests.
	change sync.Mutex

	mu   sync.Mutex
	uris map[string]bool
	// on is the legacy session that done holds for: the URIs subscribed
	// there by resources/subscribe.
	on   *upstreamState
	done map[string]bool
	// stream is the connection the notification stream is open on, and
	// cancel ends that stream; both nil between streams.
	stream *upstreamState
	cancel context.CancelFunc
	// wake, when it holds a token, makes the listener reopen its stream
	// at once rather than after a backoff. One slot: a wake-up waits
	// there until the listener looks, and a second adds nothing.
	wake chan struct{}
}

// add adds uri to the set.
func (w *resourceWatch) add(uri string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.uris == nil {
		w.uris = map[string]bool{}
	}
	w.uris[uri] = true
}

// drop removes uri from the set, and returns the legacy session it is
// subscribed on, if any, and whether the open stream is a 2026-07-28
// subscriptions/listen, which names the set.
func (w *resourceWatch) drop(uri string) (on *upstreamState, streamModern bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.uris, uri)
	if w.done[uri] {
		delete(w.done, uri)
		on = w.on
	}
	return on, w.stream != nil && w.stream.modern
}

// subscribed records that the legacy session st holds uri.
func (w *resourceWatch) subscribed(st *upstreamState, uri string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on != st {
		w.on, w.done = st, map[string]bool{}
	}
	w.done[uri] = true
}

// missing returns the URIs of the set that the legacy session st does not
// hold yet: all of them on a new session.
func (w *resourceWatch) missing(st *upstreamState) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for uri := range w.uris {
		if w.on != st || !w.done[uri] {
			out = append(out, uri)
		}
	}
	return out
}

// list returns the set.
func (w *resourceWatch) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.uris))
	for uri := range w.uris {
		out = append(out, uri)
	}
	return out
}

// streamState returns the connection the notification stream is open on.
func (w *resourceWatch) streamState() *upstreamState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stream
}

// opened records the stream just opened on st, and how to end it.
func (w *resourceWatch) opened(st *upstreamState, cancel context.CancelFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stream, w.cancel = st, cancel
}

// closed records that the stream has ended.
func (w *resourceWatch) closed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stream, w.cancel = nil, nil
}

// wakeup returns the channel that makes the listener reopen at once.
func (w *resourceWatch) wakeup() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	return w.wake
}

// relisten ends the upstream's notification stream, so that the listener
// opens it again at once on the current connection with the current set,
// and starts a listener when none runs. cred is needed only for that
// start.
func (u *upstream) relisten(cred http.Header) {
	u.watch.mu.Lock()
	if u.watch.cancel != nil {
		u.watch.cancel()
	}
	u.watch.mu.Unlock()
	select {
	case u.watch.wakeup() <- struct{}{}:
	default:
	}
	if cred != nil {
		u.startListening(cred)
	}
}

// resubscribe asks the legacy session st for every resource of the set it
// does not hold yet: after the session was replaced, or when the
// subscriptions were made on another connection. A refusal leaves the
// resource out; the agents that hold it see no updates, as they would
// directly. It holds the change lock, as subscribe and drop do: a stream
// that opens while an agent's resources/subscribe is on its way would
// otherwise find that resource missing and ask for it a second time, and
// one that read the set before an unsubscribe would ask the upstream again
// for a resource no agent holds any longer.
func (u *upstream) resubscribe(ctx context.Context, cred http.Header, st *upstreamState) {
	u.watch.change.Lock()
	defer u.watch.change.Unlock()
	for _, uri := range u.watch.missing(st) {
		rep, err := u.exchange(ctx, cred, st, subscribeRPC("resources/subscribe", uri))
		if err == nil && rep.err == nil {
			u.watch.subscribed(st, uri)
		}
	}
}

// listenFilter is the notifications a 2026-07-28 subscriptions/listen asks
// the upstream for: every list_changed, and updates of the resources
// agents subscribed to, when the upstream offers them.
func (u *upstream) listenFilter(st *upstreamState) []byte {
	uris := u.watch.list()
	if len(uris) == 0 || !offersSubscribe(st.caps) {
		return listenParams
	}
	raw, _ := json.Marshal(uris)
	return []byte(`{"notifications":{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true,"resourceSubscriptions":` +
		string(raw) + `}}`)
}
