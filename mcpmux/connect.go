package mcpmux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Connecting to an upstream: which protocol era to speak, and the
// handshake of each.

// era is the protocol era a request wants to reach its upstream in.
type era int

// The eras. eraAny is for the gateway's own requests (lists), which read
// the same in both.
const (
	eraAny era = iota
	eraLegacy
	eraModern
)

// connectFailure is a failed connect, remembered for errorTTL so that a
// dead or hung upstream costs an agent one timeout, not one per list kind.
type connectFailure struct {
	err error
	at  time.Time
}

// ensure returns a connection to the upstream in the era the request wants
// when the upstream speaks it, else in the other one: a legacy agent's
// calls travel in the legacy session all agents share, and a 2026-07-28
// agent's calls travel stateless, so each gets what its upstream would
// send it directly, and bridging happens only when the upstream lacks the
// agent's era. The gateway's own requests use whichever connection is up,
// preferring the session, which costs upstreams less per request.
func (u *upstream) ensure(ctx context.Context, cred http.Header, want era) (*upstreamState, error) {
	// Lock-free when connected, which is every call but the first.
	if st := u.current(want); st != nil {
		return st, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// Again under the lock: the agent that held it may have connected.
	if st := u.current(want); st != nil {
		return st, nil
	}
	if f := u.failed.Load(); f != nil && u.now().Sub(f.at) < errorTTL {
		return nil, f.err
	}
	st, err := u.open(ctx, cred, want == eraModern)
	if err != nil {
		// A refused credential is retried with a fresh one, and an agent
		// that went away says nothing about the upstream.
		if !errors.Is(err, ErrUnauthorized) && !errors.Is(err, context.Canceled) {
			u.failed.Store(&connectFailure{err: err, at: u.now()})
		}
		return nil, err
	}
	u.failed.Store(nil)
	// open may hand back the connection already in the slot; only a new
	// one fills an empty slot.
	u.slot(st.modern).CompareAndSwap(nil, st)
	// Every connect (re)starts the notification stream, so that a
	// list_changed sent between requests is not missed.
	u.startListening(cred)
	return st, nil
}

// current returns the connection that serves want, if it is up. For an
// era the upstream refused it returns what there is of it, nil, so that
// ensure goes on to open, which falls back to the other era.
func (u *upstream) current(want era) *upstreamState {
	legacy, modern := u.legacy.Load(), u.modern.Load()
	switch {
	case want == eraModern && (modern != nil || u.noModern.Load()):
		return modern
	case want == eraLegacy && (legacy != nil || u.noLegacy.Load()):
		return legacy
	case want == eraAny && legacy != nil:
		return legacy
	case want == eraAny:
		return modern
	}
	return nil
}

// open connects in the preferred era, falling back to the other when the
// upstream refuses it. A refusal is remembered, so that a legacy-only
// upstream is not sent a server/discover before every call; a failure to
// reach the upstream is not, since it says nothing of the eras.
func (u *upstream) open(ctx context.Context, cred http.Header, preferModern bool) (*upstreamState, error) {
	var err error
	for _, modern := range []bool{preferModern, !preferModern} {
		if u.refused(modern).Load() {
			continue
		}
		if st := u.slot(modern).Load(); st != nil {
			return st, nil
		}
		var st *upstreamState
		if modern {
			st, err = u.discover(ctx, cred)
		} else {
			st, err = u.initialize(ctx, cred)
		}
		if err == nil {
			return st, nil
		}
		if !isRefusal(err) || ctx.Err() != nil {
			return nil, err
		}
		u.refused(modern).Store(true)
	}
	if err == nil {
		// Both eras were refused before: perhaps the upstream has been
		// replaced since. Forget it and let the next request try again.
		u.noLegacy.Store(false)
		u.noModern.Store(false)
		err = errors.New("upstream speaks neither protocol era")
	}
	return nil, err
}

// errRefused marks an upstream's answer that says it does not speak an
// era, as opposed to a failure to reach it.
var errRefused = errors.New("refused")

// isRefusal reports whether err is an upstream's refusal of a handshake's
// era. A refused credential (401, or 403 insufficient_scope) is not one,
// nor is a 5xx, which may pass. Any other 4xx is: era detection falls
// back to initialize when a modern request gets a 400 (Streamable HTTP,
// "Backward Compatibility"), and a server of either era may as well
// answer the handshake it lacks with 404 or 405.
func isRefusal(err error) bool {
	var se *StatusError
	return errors.Is(err, errRefused) || (errors.As(err, &se) && !errors.Is(se, ErrUnauthorized) && se.Code < 500)
}

// slot is where the connection of an era is kept.
func (u *upstream) slot(modern bool) *atomic.Pointer[upstreamState] {
	if modern {
		return &u.modern
	}
	return &u.legacy
}

// refused is where the upstream's refusal of an era is remembered.
func (u *upstream) refused(modern bool) *atomic.Bool {
	if modern {
		return &u.noModern
	}
	return &u.noLegacy
}

// reset forgets a session the upstream no longer knows. Only if it is
// still the current one: many calls may see it expire at once, and the
// first to reconnect must not have its new session forgotten by the rest.
func (u *upstream) reset(old *upstreamState) {
	u.slot(old.modern).CompareAndSwap(old, nil)
}

// discover probes for the stateless 2026-07-28 era.
func (u *upstream) discover(ctx context.Context, cred http.Header) (*upstreamState, error) {
	st := &upstreamState{modern: true, version: mcp.ProtocolVersion20260728}
	rep, err := u.exchange(ctx, cred, st, &rpc{method: "server/discover", params: []byte(`{}`)})
	if err != nil {
		return nil, err
	}
	if rep.err != nil {
		return nil, fmt.Errorf("server/discover %w: %s", errRefused, errorMessage(rep.err))
	}
	var res struct {
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
	}
	if err := json.Unmarshal(rep.result, &res); err != nil {
		return nil, fmt.Errorf("reading server/discover result: %v", err)
	}
	// The first stateless version both sides know: the upstream lists its
	// versions, and the gateway speaks only those it implements
	// (Versioning, "Protocol Version Negotiation").
	for _, v := range res.SupportedVersions {
		if mcp.IsModernProtocol(v) && mcp.IsValidProtocolVersion(v) {
			st.version, st.caps = v, res.Capabilities
			st.ready()
			return st, nil
		}
	}
	return nil, fmt.Errorf("server/discover %w: it lists no stateless protocol version", errRefused)
}

// relayCapabilities are what the gateway declares to a legacy upstream:
// the input it can ask agents for. One session serves many agents, so it
// declares them all, and an agent that declared less answers the
// upstream's question with an error (see askLegacy).
const relayCapabilities = `{"elicitation":{"form":{},"url":{}},"sampling":{},"roots":{}}`

// initialize runs the legacy handshake and keeps the session it opens.
func (u *upstream) initialize(ctx context.Context, cred http.Header) (*upstreamState, error) {
	st := &upstreamState{}
	params := []byte(`{"protocolVersion":"` + mcp.LATEST_LEGACY_PROTOCOL_VERSION +
		`","capabilities":` + relayCapabilities + `,"clientInfo":` + string(clientInfo) + `}`)
	rep, err := u.exchange(ctx, cred, st, &rpc{method: "initialize", params: params})
	if err != nil {
		return nil, err
	}
	if rep.err != nil {
		return nil, fmt.Errorf("initialize %w: %s", errRefused, errorMessage(rep.err))
	}
	var res struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
	}
	if err := json.Unmarshal(rep.result, &res); err != nil {
		return nil, fmt.Errorf("reading initialize result: %v", err)
	}
	// The server may answer with another version than asked; a client that
	// does not speak it must not go on (Lifecycle 2025-11-25, "Version
	// Negotiation").
	if !mcp.IsValidProtocolVersion(res.ProtocolVersion) || mcp.IsModernProtocol(res.ProtocolVersion) {
		return nil, fmt.Errorf("initialize %w: the upstream chose unsupported protocol version %q", errRefused, res.ProtocolVersion)
	}
	st.version, st.caps = res.ProtocolVersion, res.Capabilities
	// A session is not ready for requests until the client says
	// initialized (Lifecycle, "Initialization").
	if err := u.notify(ctx, cred, st, "notifications/initialized", nil); err != nil {
		return nil, err
	}
	if member(st.caps, "logging") != nil {
		// The session serves agents of every level: it sends all, and
		// each agent gets what its own level admits (see notifySink). A
		// refusal leaves the upstream's default, which is no reason to
		// fail the session.
		_, _ = u.exchange(ctx, cred, st, &rpc{method: "logging/setLevel", params: []byte(`{"level":"debug"}`)})
	}
	st.ready()
	return st, nil
}
