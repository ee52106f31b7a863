package mcpmux

import (
	lru "container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Default bounds on agent sessions, so that no caller can exhaust the
// gateway.
const (
	// DefaultSessionsPerCaller is how many sessions one caller may hold:
	// plenty for one person's agents, and a bound on what one caller
	// that opens sessions in a loop can take of DefaultMaxSessions.
	DefaultSessionsPerCaller = 64
	// DefaultMaxSessions is how many sessions the gateway holds in all.
	DefaultMaxSessions = 10000
	// DefaultSessionIdle is how long an unused session lasts. Many
	// clients never send DELETE, so sessions must end on their own.
	DefaultSessionIdle = time.Hour
)

// maxRetryAfter bounds the Retry-After of a refused session: sessions also
// end by DELETE, so one may free up well before the oldest one idles out.
const maxRetryAfter = time.Minute

// session is a legacy-era agent session, opened by initialize.
type session struct {
	id      string
	caller  grants.Caller
	scope   string
	version string
	// urlElicitation is set when the agent declared URL-mode elicitation.
	urlElicitation bool
	// caps are the capabilities the agent declared, which say what it can
	// be asked; asks are the questions it has yet to answer.
	caps json.RawMessage
	asks asks
	// level is the log level the agent set with logging/setLevel.
	level atomic.Value // mcp.LoggingLevel

	// expires is when a sealed id stops opening anywhere (zero for a
	// random id), so that no instance serves the session past it; checked
	// is when SessionEnds was last asked about it, in Unix nanoseconds.
	expires time.Time
	checked atomic.Int64

	// used, all and mine belong to the Sessions and are guarded by its
	// lock: when the session was last used, in Unix nanoseconds (8 bytes
	// where a time.Time takes 24: the struct then fits a smaller size
	// class), and its places in the gateway's and its caller's lists by
	// recent use.
	used      int64
	all, mine *lru.Element

	// mu guards inflight, which the session's own requests change
	// concurrently. It and the Sessions' lock are never held together,
	// so they need no order. inflight is made by the first request that
	// can be cancelled: most sessions idle, and an empty map is 48 bytes
	// of each.
	mu       sync.Mutex
	inflight map[string]context.CancelFunc // agent request id → cancel

	// ended is closed when the session ends, however it ends, so that the
	// notification streams opened on it end too.
	ended   chan struct{}
	endOnce sync.Once
}

// logLevel is the log level the agent set, or "".
func (ss *session) logLevel() mcp.LoggingLevel {
	level, _ := ss.level.Load().(mcp.LoggingLevel)
	return level
}

// end closes ss.ended, once.
func (ss *session) end() { ss.endOnce.Do(func() { close(ss.ended) }) }

// Sessions holds the open legacy-era agent sessions. A session records
// only who opened it, where, and on which protocol version: no grant
// decision. So one Sessions may serve several Muxes in turn, and agents
// keep their sessions across a config reload while every request is
// judged by the grants of the Mux that serves it.
//
// A caller at its own limit gives up its least recently used session for a
// new one; no caller can push out another's. Past the gateway's limit, a
// new session is refused until one ends or idles out.
//
// With a session key (Options.SessionKey), a session's id holds the
// session itself, sealed: a Sessions then holds the sessions this instance
// serves, and takes in one another instance opened when its agent comes
// here. EndLocal ends one here when another instance ended it.
type Sessions struct {
	// PerCaller is how many sessions one caller may hold; NewSessions
	// sets DefaultSessionsPerCaller. Change it only before first use.
	PerCaller int
	// Max is how many sessions the gateway holds in all; NewSessions sets
	// DefaultMaxSessions. Change it only before first use.
	Max int
	// Idle is how long an unused session lasts; NewSessions sets
	// DefaultSessionIdle. Change it only before first use.
	Idle time.Duration

	mu   sync.Mutex
	byID map[string]*session
	// byTag finds a session by its tag, for EndLocal: by the tag's 32
	// bytes, so that no session holds its tag in hex.
	byTag map[[sha256.Size]byte]*session
	// recent lists every session, the most recently used first; byCaller
	// the same per caller ID. Both keep opening a session O(1): the idle
	// ones are at the back of recent, a caller's oldest at the back of its
	// own list.
	recent   lru.List
	byCaller map[string]*lru.List
	now      func() time.Time
}

// NewSessions returns an empty session store with the default limits.
func NewSessions() *Sessions {
	return &Sessions{PerCaller: DefaultSessionsPerCaller, Max: DefaultMaxSessions, Idle: DefaultSessionIdle,
		byID: map[string]*session{}, byTag: map[[sha256.Size]byte]*session{}, byCaller: map[string]*lru.List{}, now: time.Now}
}

// codeSessionLimit is the JSON-RPC error of a refused session: the first
// of JSON-RPC's codes for implementation-defined server errors.
const codeSessionLimit = -32000

// sessionLimitError refuses a session because the gateway holds Max.
type sessionLimitError struct {
	max        int
	retryAfter time.Duration
}

func (e *sessionLimitError) Error() string {
	return fmt.Sprintf("the gateway holds its limit of %d open sessions: try again later, and end sessions you no longer use with DELETE", e.max)
}

// refuseSession answers an initialize the gateway has no room for with
// 503 and Retry-After. Not a 4xx: an MCP client reads a 4xx to initialize
// as a server that speaks only the old HTTP+SSE transport (the spec's
// backwards compatibility rule) and would fall back to it.
func refuseSession(w http.ResponseWriter, id []byte, err *sessionLimitError) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64((err.retryAfter+time.Second-1)/time.Second), 10))
	writeRPCError(w, http.StatusServiceUnavailable, id, &rpcError{Code: codeSessionLimit, Message: err.Error()})
}

// randomSessionID returns a session id of 128 random bits: one that cannot
// be guessed (Security Best Practices 2025-11-25, "Session Hijacking":
// secure, non-deterministic session ids).
func randomSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSession returns a session that no Sessions holds yet.
func newSession(id string, caller grants.Caller, scope, version string) *session {
	return &session{id: id, caller: caller, scope: scope, version: version, ended: make(chan struct{})}
}

// sessionTag is the name SessionEnds knows a session by: the SHA-256 of its
// id, in hex. The id is the bearer credential of the session, so neither
// the shared store nor the notices between instances ever hold it.
func sessionTag(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// tag is the session's sessionTag, made when asked: SessionEnds is asked
// about a session seldom, and a tag held by every session was 80 bytes of
// each.
func (ss *session) tag() string { return sessionTag(ss.id) }

// tagKey is the key of the session id names in Sessions.byTag.
func tagKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// open holds ss from now on, or the session already held under its id (a
// sealed id resumed by two requests at once). When the caller already has
// its share, its own least recently used session makes way; when the
// gateway is full, open refuses.
func (s *Sessions) open(ss *session) (*session, *sessionLimitError) {
	tag := tagKey(ss.id) // outside the lock, which every request needs
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if held := s.byID[ss.id]; held != nil {
		s.touch(held, now)
		return held, nil
	}
	// Idle sessions are dropped here, when room is needed, rather than by
	// a timer: the store needs no goroutine of its own.
	s.dropIdle(now)
	if mine := s.byCaller[ss.caller.ID]; mine != nil && mine.Len() >= s.PerCaller {
		s.remove(mine.Back().Value.(*session))
	} else if len(s.byID) >= s.Max {
		return nil, &sessionLimitError{max: s.Max, retryAfter: s.untilFree(now)}
	}
	mine := s.byCaller[ss.caller.ID]
	if mine == nil {
		mine = lru.New()
		s.byCaller[ss.caller.ID] = mine
	}
	ss.used = now.UnixNano()
	ss.all, ss.mine = s.recent.PushFront(ss), mine.PushFront(ss)
	s.byID[ss.id], s.byTag[tag] = ss, ss
	return ss, nil
}

// dropIdle drops the sessions unused for longer than Idle. They are at the
// back of recent, so this costs one step per session dropped.
func (s *Sessions) dropIdle(now time.Time) {
	for e := s.recent.Back(); e != nil && now.UnixNano()-e.Value.(*session).used > int64(s.Idle); e = s.recent.Back() {
		s.remove(e.Value.(*session))
	}
}

// untilFree is how long until the least recently used session idles out,
// within [1s, maxRetryAfter], for a refusal's Retry-After.
func (s *Sessions) untilFree(now time.Time) time.Duration {
	wait := maxRetryAfter
	if e := s.recent.Back(); e != nil {
		wait = min(wait, time.Duration(e.Value.(*session).used+int64(s.Idle)-now.UnixNano()))
	}
	return max(wait, time.Second)
}

// remove forgets a session; s.mu must be held. Ending it closes its
// notification streams and drops its resource subscriptions, whichever
// way it went.
func (s *Sessions) remove(ss *session) {
	ss.end()
	delete(s.byID, ss.id)
	delete(s.byTag, tagKey(ss.id))
	s.recent.Remove(ss.all)
	mine := s.byCaller[ss.caller.ID]
	mine.Remove(ss.mine)
	if mine.Len() == 0 {
		delete(s.byCaller, ss.caller.ID)
	}
}

// get returns the session id names, if it belongs to caller and scope. A
// session presented by anyone else does not exist, as far as they can
// tell, and stays as recently used as it was.
func (s *Sessions) get(id string, caller grants.Caller, scope string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok || ss.caller.ID != caller.ID || ss.scope != scope {
		return nil, false
	}
	s.touch(ss, s.now())
	return ss, true
}

// touch marks ss as used at now; s.mu must be held.
func (s *Sessions) touch(ss *session, now time.Time) {
	ss.used = now.UnixNano()
	s.recent.MoveToFront(ss.all)
	s.byCaller[ss.caller.ID].MoveToFront(ss.mine)
}

// close ends the session id names, if held here.
func (s *Sessions) close(id string) {
	s.closeFound(func() *session { return s.byID[id] })
}

// EndLocal ends the session held here, if any, that SessionEnds knows by
// tag: for a notice that another instance ended it, so that its streams
// and requests here end now rather than at the next recheck.
func (s *Sessions) EndLocal(tag string) {
	var key [sha256.Size]byte
	if len(tag) != hex.EncodedLen(len(key)) {
		return // not a tag: no session has it
	}
	if _, err := hex.Decode(key[:], []byte(tag)); err != nil || hex.EncodeToString(key[:]) != tag {
		return // not a tag as sessionTag writes them
	}
	s.closeFound(func() *session { return s.byTag[key] })
}

// closeFound ends the session find returns under the store's lock, if any.
func (s *Sessions) closeFound(find func() *session) {
	s.mu.Lock()
	ss := find()
	if ss != nil {
		s.remove(ss)
	}
	s.mu.Unlock()
	// Its requests are cancelled outside the store's lock, which every
	// other session's requests need meanwhile.
	if ss != nil {
		ss.cancelAll()
	}
}

// Close ends every session, and cancels their requests in flight. The
// store stays usable: a session opened after Close is a new one.
func (s *Sessions) Close() {
	s.mu.Lock()
	all := s.byID
	s.byID, s.byTag = map[string]*session{}, map[[sha256.Size]byte]*session{}
	s.byCaller = map[string]*lru.List{}
	s.recent.Init()
	s.mu.Unlock()
	for _, ss := range all {
		ss.end()
		ss.cancelAll()
	}
}

// track registers an in-flight request so that notifications/cancelled
// can stop it; the returned func forgets it.
func (ss *session) track(id []byte, cancel context.CancelFunc) func() {
	// Keyed by the id's JSON, so that 1 and "1" are two requests.
	key := string(id)
	ss.mu.Lock()
	if ss.inflight == nil {
		ss.inflight = map[string]context.CancelFunc{}
	}
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

// cancelAll cancels every request in flight, for a session that ended.
func (ss *session) cancelAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, cancel := range ss.inflight {
		cancel()
	}
}
