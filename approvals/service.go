package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Defaults for Options.
const (
	// DefaultTTL is how long a request waits for an approver, and how long
	// an approval then waits for its retry.
	DefaultTTL = 10 * time.Minute
	// DefaultMaxPending bounds the requests one caller may have waiting,
	// so that no caller fills the store (or the approvers' page).
	DefaultMaxPending = 20
	// DefaultKeep is how long a request is kept after it lapses, so that
	// the recent ones can be listed and a late retry told it expired.
	DefaultKeep = 24 * time.Hour
)

// Where requests live in the store. A request is under requestPrefix by
// id; bindingPrefix maps a binding to its latest request, so that the
// retry finds its approval and a second call reuses the pending one; and
// pendingPrefix holds a marker per pending request, by caller, which
// counts them.
const (
	requestPrefix = "approvals/requests/"
	bindingPrefix = "approvals/bindings/"
	pendingPrefix = "approvals/pending/"
)

// maxAttempts bounds the compare-and-set loops: each turn means another
// instance or request changed the record meanwhile.
const maxAttempts = 8

// Errors of a Service.
var (
	// ErrNotFound: no request has the id (or it is long gone).
	ErrNotFound = errors.New("no such approval request")
	// ErrNotPending: the request was decided already, or lapsed.
	ErrNotPending = errors.New("the approval request is no longer pending")
	// ErrSelfApproval: the caller tried to approve its own call.
	ErrSelfApproval = errors.New("a caller may not approve its own call")
	// ErrTooManyPending: the caller has DefaultMaxPending requests waiting.
	ErrTooManyPending = errors.New("too many approval requests are waiting for this caller")
)

// Store is what a Service keeps requests in: a sealed store (the requests
// hold arguments) with versions, so that a state changes only from the
// state read (store.Sealed over any backend).
type Store interface {
	store.Store
	store.Versioned
}

// EventKind says what happened to a request.
type EventKind string

// The events of a request.
const (
	EventRequested EventKind = "approval_requested"
	EventApproved  EventKind = "approval_approved"
	EventDenied    EventKind = "approval_denied"
	EventUsed      EventKind = "approval_used"
	EventExpired   EventKind = "approval_expired"
)

// Event tells of a request's change, for the audit log. Request holds no
// arguments.
type Event struct {
	Kind    EventKind
	Request Request
}

// Options configure a Service.
type Options struct {
	// Store keeps the requests. Required.
	Store Store
	// TTL is how long a request waits, and an approval lives. Default
	// DefaultTTL.
	TTL time.Duration
	// MaxPending bounds one caller's waiting requests. Default
	// DefaultMaxPending.
	MaxPending int
	// Keep is how long a request is kept once it lapses. Default
	// DefaultKeep.
	Keep time.Duration
	// SelfApprove lets a caller approve its own call. Default false.
	SelfApprove bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnEvent, when set, is told of every change. It must not block.
	OnEvent func(Event)
	// OnRequest, when set, is told of each new request, redacted. It must
	// not block (Webhook.Send does not).
	OnRequest func(Request)
}

// Service keeps approval requests. It is safe for concurrent use, by
// several instances sharing its store too.
type Service struct {
	o Options
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("approvals: a store is required")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}, nil
}

// TTL returns how long a request waits and an approval lives.
func (s *Service) TTL() time.Duration { return s.o.TTL }

// Outcome is what a call that needs approval may do.
type Outcome int

// The outcomes of Check.
const (
	// Wait: the call waits for an approver; Request says which.
	Wait Outcome = iota
	// Pass: an approval matched, and this call used it.
	Pass
	// Denied: an approver denied this call.
	Denied
)

// Check decides a call bound to b (ArgsSHA256 empty: Check fills it in)
// with args. An approved, unexpired, unused request for the binding is
// used, once: of two retries at the same time, on one instance or two,
// one passes and the other waits for a new approval. A pending request
// for it is answered again; otherwise a new one is made.
func (s *Service) Check(ctx context.Context, b Binding, args json.RawMessage) (Outcome, Request, error) {
	canonical, err := Canonical(args)
	if err != nil {
		return Wait, Request{}, err
	}
	b.ArgsSHA256 = Hash(canonical)
	for range maxAttempts {
		out, req, done, err := s.try(ctx, b, canonical)
		if done || err != nil {
			return out, req, err
		}
	}
	return Wait, Request{}, errors.New("approvals: the request kept changing under this call; try again")
}

// try is one turn of Check: done is false when a record changed between
// its read and its write.
func (s *Service) try(ctx context.Context, b Binding, canonical []byte) (Outcome, Request, bool, error) {
	bkey := bindingPrefix + b.key()
	id, bversion, err := s.getVersioned(ctx, bkey)
	if err != nil {
		return Wait, Request{}, false, err
	}
	if id != nil {
		r, rversion, err := s.load(ctx, string(id))
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return Wait, Request{}, false, err
		default:
			if out, done, err := s.settle(ctx, &r, rversion); done || err != nil {
				return out, r, done, err
			}
		}
	}
	r, ok, err := s.create(ctx, b, canonical, bkey, bversion)
	return Wait, r, ok, err
}

// settle acts on the binding's latest request r: it uses an approval,
// delivers a denial, or answers a pending request again. done is false
// when r cannot serve the call (used, expired, changed meanwhile) and a
// new request is due.
func (s *Service) settle(ctx context.Context, r *Request, version uint64) (Outcome, bool, error) {
	now := s.o.Now()
	if r.lapsed(now) {
		return Wait, false, s.expire(ctx, r, version)
	}
	switch r.State {
	case StatePending:
		return Wait, true, nil
	case StateApproved, StateDenied:
		was := r.State
		ok, err := s.transition(ctx, r, version, StateUsed)
		if err != nil || !ok {
			return Wait, false, err
		}
		if was == StateDenied {
			// A denial is told once; the next retry asks anew.
			return Denied, true, nil
		}
		s.emit(EventUsed, *r)
		return Pass, true, nil
	}
	return Wait, false, nil
}

// create stores a new pending request for b and points the binding at
// it, unless another call did first (ok false: look again).
func (s *Service) create(ctx context.Context, b Binding, canonical []byte, bkey string, bversion uint64) (Request, bool, error) {
	if err := s.checkRoom(ctx, b.Caller); err != nil {
		return Request{}, false, err
	}
	now := s.o.Now()
	r := Request{ID: newID(), Binding: b, State: StatePending, Arguments: canonical, Created: now, Expires: now.Add(s.o.TTL)}
	ok, err := s.o.Store.PutIfVersion(ctx, bkey, []byte(r.ID), s.o.TTL+s.o.Keep, bversion)
	if err != nil || !ok {
		return Request{}, false, wrap("indexing an approval request", err)
	}
	if err := s.save(ctx, &r, 0); err != nil {
		return Request{}, false, err
	}
	if err := s.o.Store.Put(ctx, s.pendingKey(&r), nil, s.o.TTL); err != nil {
		return Request{}, false, wrap("counting an approval request", err)
	}
	s.emit(EventRequested, r)
	if s.o.OnRequest != nil {
		s.o.OnRequest(r.Redacted())
	}
	return r, true, nil
}

// checkRoom refuses a new request from a caller with MaxPending waiting.
// The markers expire with their requests, so a caller who stops asking
// gets room back without anyone deciding.
func (s *Service) checkRoom(ctx context.Context, caller string) error {
	keys, err := s.o.Store.List(ctx, pendingPrefix+callerKey(caller)+"/")
	if err != nil {
		return wrap("counting approval requests", err)
	}
	if len(keys) >= s.o.MaxPending {
		return ErrTooManyPending
	}
	return nil
}

// Decision is an approver's verdict on a request.
type Decision struct {
	// ID names the request.
	ID string
	// Approve approves it; false denies it.
	Approve bool
	// By is who decides: an approver's identity, or "admin" for the
	// admin API.
	By string
	// Trusted is set by the admin API, whose reach is its authority: it
	// is nobody's own call.
	Trusted bool
}

// Decide approves or denies a pending request. An approval lives TTL from
// now. The caller's own call is refused unless SelfApprove.
func (s *Service) Decide(ctx context.Context, d Decision) (Request, error) {
	for range maxAttempts {
		r, version, err := s.load(ctx, d.ID)
		if err != nil {
			return Request{}, err
		}
		if r.lapsed(s.o.Now()) {
			return r.Redacted(), errors.Join(ErrNotPending, s.expire(ctx, &r, version))
		}
		if r.State != StatePending {
			return r.Redacted(), ErrNotPending
		}
		if !d.Trusted && !s.o.SelfApprove && d.By == r.Caller {
			return r.Redacted(), ErrSelfApproval
		}
		ok, err := s.decide(ctx, &r, version, d)
		if err != nil {
			return Request{}, err
		}
		if ok {
			return r.Redacted(), nil
		}
	}
	return Request{}, errors.New("approvals: the request kept changing; try again")
}

// decide writes d into the pending request r read at version.
func (s *Service) decide(ctx context.Context, r *Request, version uint64, d Decision) (bool, error) {
	now := s.o.Now()
	r.DecidedBy, r.Decided, r.State = d.By, now, StateDenied
	kind := EventDenied
	if d.Approve {
		r.State, r.Expires, kind = StateApproved, now.Add(s.o.TTL), EventApproved
	}
	ok, err := s.swap(ctx, r, version)
	if err != nil || !ok {
		return false, err
	}
	_ = s.o.Store.Delete(ctx, s.pendingKey(r)) // the marker lapses anyway
	s.emit(kind, *r)
	return true, nil
}

// Get returns request id, arguments included, lapsing it if it is due.
func (s *Service) Get(ctx context.Context, id string) (Request, error) {
	r, version, err := s.load(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.lapsed(s.o.Now()) {
		if err := s.expire(ctx, &r, version); err != nil {
			return Request{}, err
		}
	}
	return r, nil
}

// List returns the requests kept, pending first and then newest first,
// with their arguments only when detail is set; those due lapse on the
// way.
func (s *Service) List(ctx context.Context, detail bool) ([]Request, error) {
	keys, err := s.o.Store.List(ctx, requestPrefix)
	if err != nil {
		return nil, wrap("listing approval requests", err)
	}
	out := make([]Request, 0, len(keys))
	for _, k := range keys {
		r, err := s.Get(ctx, strings.TrimPrefix(k, requestPrefix))
		if errors.Is(err, ErrNotFound) {
			continue // gone between the list and the read
		}
		if err != nil {
			return nil, err
		}
		if !detail {
			r = r.Redacted()
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Request) int {
		if (a.State == StatePending) != (b.State == StatePending) {
			if a.State == StatePending {
				return -1
			}
			return 1
		}
		return b.Created.Compare(a.Created)
	})
	return out, nil
}

// Pending counts the requests waiting, across every instance.
func (s *Service) Pending(ctx context.Context) (int, error) {
	keys, err := s.o.Store.List(ctx, pendingPrefix)
	return len(keys), wrap("counting approval requests", err)
}

// expire marks r, read at version, expired: only once, by whoever wins.
func (s *Service) expire(ctx context.Context, r *Request, version uint64) error {
	ok, err := s.transition(ctx, r, version, StateExpired)
	if ok {
		_ = s.o.Store.Delete(ctx, s.pendingKey(r))
	}
	return err
}

// transition moves r, read at version, to state; it reports false when
// the record changed meanwhile. Moving to expired is an event.
func (s *Service) transition(ctx context.Context, r *Request, version uint64, state State) (bool, error) {
	r.State = state
	ok, err := s.swap(ctx, r, version)
	if ok && state == StateExpired {
		s.emit(EventExpired, *r)
	}
	return ok, err
}

// swap writes r if its record is still at version.
func (s *Service) swap(ctx context.Context, r *Request, version uint64) (bool, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("encoding approval request: %w", err)
	}
	ok, err := s.o.Store.PutIfVersion(ctx, requestPrefix+r.ID, raw, s.keepFor(r), version)
	return ok, wrap("storing approval request", err)
}

// save stores a new request r (version 0: create only).
func (s *Service) save(ctx context.Context, r *Request, version uint64) error {
	ok, err := s.swap(ctx, r, version)
	if err == nil && !ok {
		err = errors.New("approvals: request id taken")
	}
	return err
}

// keepFor is how long the store keeps r: to its expiry, and Keep after.
func (s *Service) keepFor(r *Request) time.Duration {
	return max(r.Expires.Sub(s.o.Now()), 0) + s.o.Keep
}

// load reads request id with its version.
func (s *Service) load(ctx context.Context, id string) (Request, uint64, error) {
	if !ValidID(id) {
		return Request{}, 0, ErrNotFound
	}
	raw, version, err := s.getVersioned(ctx, requestPrefix+id)
	if err != nil {
		return Request{}, 0, err
	}
	if raw == nil {
		return Request{}, 0, ErrNotFound
	}
	var r Request
	if err := json.Unmarshal(raw, &r); err != nil {
		return Request{}, 0, fmt.Errorf("reading approval request: %w", err)
	}
	return r, version, nil
}

// getVersioned reads key; a missing key is nil and version 0.
func (s *Service) getVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	raw, version, err := s.o.Store.GetVersioned(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	return raw, version, wrap("reading approvals", err)
}

// pendingKey is r's marker among its caller's pending requests.
func (s *Service) pendingKey(r *Request) string {
	return pendingPrefix + callerKey(r.Caller) + "/" + r.ID
}

// callerKey names a caller in a store key without its identity (often an
// email), whatever characters it holds.
func callerKey(caller string) string {
	return Binding{Caller: caller}.key()[:32]
}

// emit tells OnEvent of a change, without the arguments.
func (s *Service) emit(kind EventKind, r Request) {
	if s.o.OnEvent != nil {
		s.o.OnEvent(Event{Kind: kind, Request: r.Redacted()})
	}
}

// wrap gives a store error context; nil stays nil.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("approvals: %s: %w", what, err)
}
