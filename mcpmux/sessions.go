package mcpmux

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Bounds on agent sessions, so that no caller can exhaust the gateway.
const (
	maxSessionsPerCaller = 64
	maxSessions          = 10000
	sessionIdle          = time.Hour
)

// session is a legacy-era agent session, opened by initialize.
type session struct {
	id      string
	caller  grants.Caller
	scope   string
	version string
	// urlElicitation is set when the agent declared URL-mode elicitation.
	urlElicitation bool

	mu       sync.Mutex
	used     time.Time
	inflight map[string]context.CancelFunc // agent request id → cancel
}

// Sessions holds the open legacy-era agent sessions. A session records
// only who opened it, where, and on which protocol version: no grant
// decision. So one Sessions may serve several Muxes in turn, and agents
// keep their sessions across a config reload while every request is
// judged by the grants of the Mux that serves it.
type Sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	now  func() time.Time
}

// NewSessions returns an empty session store.
func NewSessions() *Sessions {
	return &Sessions{byID: map[string]*session{}, now: time.Now}
}

// open starts a session. When the caller already has its share, its least
// recently used session makes way.
func (s *Sessions) open(caller grants.Caller, scope, version string) *session {
	var b [16]byte
	_, _ = rand.Read(b[:])
	ss := &session{id: hex.EncodeToString(b[:]), caller: caller, scope: scope, version: version,
		used: s.now(), inflight: map[string]context.CancelFunc{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(caller.ID)
	s.byID[ss.id] = ss
	return ss
}

// evict drops idle sessions and, when caller or the gateway is at its
// limit, the least recently used one.
func (s *Sessions) evict(callerID string) {
	now := s.now()
	var mine, all []*session
	for id, ss := range s.byID {
		if now.Sub(ss.lastUsed()) > sessionIdle {
			delete(s.byID, id)
			continue
		}
		all = append(all, ss)
		if ss.caller.ID == callerID {
			mine = append(mine, ss)
		}
	}
	switch {
	case len(mine) >= maxSessionsPerCaller:
		delete(s.byID, leastRecent(mine).id)
	case len(all) >= maxSessions:
		delete(s.byID, leastRecent(all).id)
	}
}

// leastRecent returns the session used longest ago.
func leastRecent(list []*session) *session {
	return slices.MinFunc(list, func(a, b *session) int { return a.lastUsed().Compare(b.lastUsed()) })
}

// get returns the session id names, if it belongs to caller and scope. A
// session presented by anyone else does not exist, as far as they can tell.
func (s *Sessions) get(id string, caller grants.Caller, scope string) (*session, bool) {
	s.mu.Lock()
	ss, ok := s.byID[id]
	s.mu.Unlock()
	if !ok || ss.caller.ID != caller.ID || ss.scope != scope {
		return nil, false
	}
	ss.mu.Lock()
	ss.used = s.now()
	ss.mu.Unlock()
	return ss, true
}

// close ends a session.
func (s *Sessions) close(id string) {
	s.mu.Lock()
	ss := s.byID[id]
	delete(s.byID, id)
	s.mu.Unlock()
	if ss != nil {
		ss.cancelAll()
	}
}

// Close ends every session.
func (s *Sessions) Close() {
	s.mu.Lock()
	all := s.byID
	s.byID = map[string]*session{}
	s.mu.Unlock()
	for _, ss := range all {
		ss.cancelAll()
	}
}

func (ss *session) lastUsed() time.Time {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.used
}

// track registers an in-flight request so that notifications/cancelled
// can stop it; the returned func forgets it.
func (ss *session) track(id []byte, cancel context.CancelFunc) func() {
	key := string(id)
	ss.mu.Lock()
	ss.inflight[key] = cancel
	ss.mu.Unlock()
	return func() {
		ss.mu.Lock()
		delete(ss.inflight, key)
		ss.mu.Unlock()
	}
}

// cancel stops the in-flight request with the given id, if any. Only this
// session's own requests can be reached this way.
func (ss *session) cancel(id []byte) {
	ss.mu.Lock()
	cancel := ss.inflight[string(id)]
	ss.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (ss *session) cancelAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, cancel := range ss.inflight {
		cancel()
	}
}
