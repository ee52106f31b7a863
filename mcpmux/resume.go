package mcpmux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Bounds on sealed session ids, which any instance that holds the session
// key can resume.
const (
	// SessionMaxAge is how long a sealed session id lasts from its
	// initialize, on every instance, however much it is used: a bound on
	// what a leaked id is worth, and so how long SessionEnds must remember
	// an ended session. A day outlasts an agent's working session; one
	// that runs longer gets 404 and initializes again, as MCP clients do.
	SessionMaxAge = 24 * time.Hour
	// SessionRecheck is how often a session held here asks SessionEnds
	// whether another instance ended it: the bound on how long it lives
	// on here when the notice that should have ended it (EndLocal) was
	// lost. Within it, requests make no store round trip.
	SessionRecheck = time.Minute
)

// sessionPrefix begins a sealed session id; the 1 is the format's version,
// so that a later format can tell its own.
const sessionPrefix = "mcpgate-s1."

// maxSealedCaps bounds the capabilities a sealed id carries: an id travels
// in the header of every request, and larger capabilities are left out
// (a resumed session then asks its agent nothing).
const maxSealedCaps = 1 << 10

// SessionEnds remembers the legacy sessions that have ended, where every
// instance serving the same agents can see it, so that a session DELETEd
// through one instance is not resumed through another. A session is known
// by its tag, the SHA-256 of its id in hex: the id is the session's bearer
// credential, and never leaves the Mux. Both methods are called on the
// request path and must be safe for concurrent use.
type SessionEnds interface {
	// End records that the session tagged tag has ended, for at least
	// SessionMaxAge, and should tell the other instances, which pass the
	// tag to their Sessions' EndLocal.
	End(ctx context.Context, tag string) error
	// Ended reports whether End was called for tag.
	Ended(ctx context.Context, tag string) (bool, error)
}

// sessionClaims is what a sealed session id holds: all a Mux needs to
// serve a session another instance opened. Its JSON names are one letter:
// the id travels in every request.
type sessionClaims struct {
	Caller  string          `json:"c"`
	Scope   string          `json:"s,omitempty"`
	Version string          `json:"v"`
	Caps    json.RawMessage `json:"k,omitempty"`
	URL     bool            `json:"u,omitempty"`
	Issued  int64           `json:"t"`
}

// checkSessionKey refuses a session key that is not 32 bytes, and one
// without SessionEnds: a sealed id outlives the session held here, so only
// SessionEnds keeps a DELETEd one ended. Without a key, Ended is unused.
func checkSessionKey(opts Options) error {
	switch {
	case opts.SessionKey == nil:
		return nil
	case len(opts.SessionKey) != 32:
		return fmt.Errorf("session key is %d bytes, want 32", len(opts.SessionKey))
	case opts.Ended == nil:
		return errors.New("a session key needs Ended, or a DELETEd session would resume")
	}
	return nil
}

// issueSession returns a session for an agent's initialize: with a sealed
// id when the Mux has a session key, else with a random one.
func (m *Mux) issueSession(caller grants.Caller, scope, version string, caps json.RawMessage) *session {
	urlElicitation := elicitationVersion(version) && declaresURLElicitation(caps)
	now := m.now()
	var id string
	if m.sessionSeal == nil {
		id = randomSessionID()
	} else {
		c := sessionClaims{Caller: caller.ID, Scope: scope, Version: version, URL: urlElicitation, Issued: now.Unix()}
		if len(caps) <= maxSealedCaps {
			c.Caps = caps
		}
		id = m.sessionSeal.sealJSON(sessionPrefix, caller.ID, c)
	}
	ss := newSession(id, caller, scope, version)
	ss.caps, ss.urlElicitation = caps, urlElicitation
	ss.setExpiry(now, m.sessionSeal != nil)
	return ss
}

// setExpiry starts the session's clocks: a sealed one stops at
// SessionMaxAge, and it was last checked now.
func (ss *session) setExpiry(issued time.Time, sealed bool) {
	if sealed {
		ss.expires = issued.Add(SessionMaxAge)
	}
	ss.checked.Store(issued.UnixNano())
}

// session returns the legacy session id names for caller at scope: one
// held here, or one another instance issued, resumed here. Anything else,
// whatever the reason, is no session, so that the answer tells nothing.
func (m *Mux) session(ctx context.Context, id string, caller grants.Caller, scope string) (*session, bool) {
	ss, held, ok := m.lookup(ctx, id, caller, scope)
	if !ok || held {
		return ss, ok
	}
	// The limits apply as to a new session: at its share, the caller's
	// least recently used session makes way; a full gateway refuses.
	ss, err := m.sessions.open(ss)
	return ss, err == nil
}

// lookup finds the session id names for caller at scope, and reports
// whether it is held here; one that is not is checked but not held yet.
func (m *Mux) lookup(ctx context.Context, id string, caller grants.Caller, scope string) (ss *session, held, ok bool) {
	if ss, ok := m.sessions.get(id, caller, scope); ok {
		return ss, true, m.stillOpen(ctx, ss)
	}
	ss, ok = m.resumable(ctx, id, caller, scope)
	return ss, false, ok
}

// stillOpen reports whether a session held here is still open: not past
// its age, and not ended by another instance when it is time to ask. The
// store is asked outside the Sessions' lock, and at most once per
// SessionRecheck, so that the hot path makes no round trip.
func (m *Mux) stillOpen(ctx context.Context, ss *session) bool {
	if m.ends == nil {
		return true
	}
	now := m.now()
	// A random id has no age: one a Mux without a key issued before a
	// reload lives as it did.
	if !ss.expires.IsZero() && now.After(ss.expires) {
		m.sessions.close(ss.id)
		return false
	}
	if !ss.recheckDue(now) {
		return true
	}
	ended, err := m.ends.Ended(ctx, ss.tag())
	if err != nil {
		// The session was open at the last check, and agents go on
		// while the store is down; the next check comes in a minute.
		m.logger.Warn("checking whether a session ended elsewhere", zap.Error(err))
		return true
	}
	if ended {
		m.sessions.close(ss.id)
	}
	return !ended
}

// recheckDue reports whether it is time to ask again whether the session
// ended elsewhere, and claims that check, so that of the requests that
// come at once, one asks.
func (ss *session) recheckDue(now time.Time) bool {
	last := ss.checked.Load()
	return now.UnixNano()-last >= int64(SessionRecheck) && ss.checked.CompareAndSwap(last, now.UnixNano())
}

// resumable returns, not yet held, the session a sealed id issued by any
// instance names, when it is caller's, for scope, not too old and not
// ended. Its local state (questions pending, log level, resource
// subscriptions) starts empty: only what the id holds carries over.
func (m *Mux) resumable(ctx context.Context, id string, caller grants.Caller, scope string) (*session, bool) {
	if m.sessionSeal == nil {
		return nil, false
	}
	now := m.now()
	c, ok := openSessionID(*m.sessionSeal, id, caller.ID, scope, now)
	if !ok {
		return nil, false
	}
	ss := newSession(id, caller, scope, c.Version)
	ss.caps, ss.urlElicitation = c.Caps, c.URL
	ss.setExpiry(time.Unix(c.Issued, 0), true)
	// Asked only here and not per request: resuming is rare, once per
	// session and instance. A store that cannot answer resumes nothing:
	// the agent initializes again, which needs no store.
	ended, err := m.ends.Ended(ctx, ss.tag())
	if err != nil {
		m.logger.Warn("checking whether a session ended elsewhere", zap.Error(err))
	}
	if err != nil || ended {
		return nil, false
	}
	ss.checked.Store(now.UnixNano())
	return ss, true
}

// openSessionID reads a sealed session id for caller at scope, or reports
// false: sealed by this key for this caller, for this scope, on a legacy
// version the gateway speaks, and younger than SessionMaxAge.
func openSessionID(s sealer, id, caller, scope string, now time.Time) (sessionClaims, bool) {
	var c sessionClaims
	if !s.openJSON(sessionPrefix, caller, id, &c) {
		return c, false
	}
	issued := time.Unix(c.Issued, 0)
	ok := c.Caller == caller && c.Scope == scope && legacyVersion(c.Version) &&
		!now.After(issued.Add(SessionMaxAge))
	return c, ok
}

// legacyVersion reports whether v is a protocol version of the legacy era
// that the gateway speaks.
func legacyVersion(v string) bool {
	return mcp.IsValidProtocolVersion(v) && !mcp.IsModernProtocol(v)
}

// endSession ends a session for DELETE: first where every instance sees
// it, so that none resumes it, then here.
func (m *Mux) endSession(ctx context.Context, ss *session) error {
	if m.ends != nil {
		if err := m.ends.End(ctx, ss.tag()); err != nil {
			return fmt.Errorf("recording the end of a session: %w", err)
		}
	}
	m.sessions.close(ss.id)
	return nil
}
