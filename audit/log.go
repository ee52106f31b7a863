package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Defaults for Options and Filter.
const (
	// DefaultMax is how many events the ring keeps of each class.
	DefaultMax = 10000
	// DefaultBuffer is how many events of each class may wait for the
	// store: about three seconds of tool calls at 5,000 a second, which
	// outlasts the pauses of a store under load (Badger waiting for a
	// memtable flush held writes for over 200 ms, when 1,024 dropped
	// events at that rate). A waiting event takes about 200 bytes, only
	// while it waits.
	DefaultBuffer = 16384
	// DefaultLimit is how many events a Query returns.
	DefaultLimit = 100
)

// Prefix is where the ring lives in the store: under store.ClearPrefix,
// since its events are not sealed (they hold no secret). Each class has
// a folder below it (admin/, auth/, calls/, ...), where the events of one
// batch are a page under one key: its newest event's sequence number in
// 20 digits, a dash and how many it holds. Each of its lines is an
// event's number, a space and its JSON. The numbers are one sequence
// across the classes, in the order events were recorded.
const Prefix = store.ClearPrefix + "audit/"

// dropWarning is how often, at most, a Log warns that it dropped events.
const dropWarning = time.Minute

// Options configure a Log.
type Options struct {
	// Logger receives one line per event. The caller names it (mcpgate
	// names it mcpgate.audit). Nil discards the lines.
	Logger *zap.Logger
	// Store keeps the ring. Logs on one store share its ring and its
	// sequence, so that two config generations never write one key: the
	// ring keeps the Buffer of the Log that opened it and the Max of the
	// latest. Nil keeps the ring in memory, unless Table is set.
	Store Store
	// Table, instead of Store, keeps the events: one table that several
	// instances share, such as PostgreSQL's (store/postgres), where every
	// instance's Query sees every instance's events. Logs on one Table
	// share its writer, as they share a Store's ring. It is trimmed to Max
	// events per class after every Max/8 events a writer adds, so it may
	// hold somewhat more for a while. Its dynamic type must be comparable.
	Table Table
	// Max is how many events the ring keeps of each class (admin
	// changes; consents, refreshes, disconnects and revocations; tool
	// calls); older ones of the class are deleted. A Store's ring deletes
	// a page once all its events are older than the newest Max, so a
	// class may hold up to a batch (256) more; Query answers at most Max
	// of each. Default DefaultMax.
	Max int
	// ArgsKey is the key of HashArgs. Nil means tool arguments leave no
	// trace in events.
	ArgsKey []byte
	// Buffer is how many events of each class may wait for the store;
	// beyond it, the store write of an event is dropped (its line is
	// logged even so). Memory is taken as events wait, not up front.
	// Default DefaultBuffer.
	Buffer int
	// Burst is how many attempts of one kind by one user (refused tool
	// calls, consents started or failed, failed refreshes) the ring keeps
	// one by one in each Window; the rest are logged as lines but kept as
	// one event that counts them, recorded when the window closes.
	// Default DefaultBurst.
	Burst int
	// Window is how long a window of Burst attempts lasts, from a user's
	// first attempt of a kind. Default DefaultWindow.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Filter selects the events a Query returns.
type Filter struct {
	// Since leaves out events older than it.
	Since time.Time
	// User, Connector and Kind, when set, must equal the event's.
	User      string
	Connector string
	Kind      Kind
	// Limit is the most events returned. Default DefaultLimit; at most
	// what the rings keep, Max of each class.
	Limit int
}

// Log records events: a line to the logger at once, and the event to the
// ring in the store (or to the Table), written in the background in
// batches so that a recorded event costs the caller no disk sync or round
// trip. It is safe for concurrent use.
type Log struct {
	logger  *zap.Logger
	argsKey []byte
	// macs are HMACs keyed with argsKey, for HashArgs: keying one anew
	// cost two SHA-256 blocks and five allocations on every tool call.
	macs   sync.Pool
	now    func() time.Time
	ring   *ring
	limit  *limiter
	closed atomic.Bool
}

// New returns a Log. With a store that no other open Log uses, it reads
// the store's last sequence number, so that numbering goes on after a
// restart.
func New(opts Options) (*Log, error) {
	l := &Log{logger: opts.Logger, argsKey: append([]byte(nil), opts.ArgsKey...), now: opts.Now}
	if l.logger == nil {
		l.logger = zap.NewNop()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if opts.Max <= 0 {
		opts.Max = DefaultMax
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	l.macs.New = func() any { return hmac.New(sha256.New, l.argsKey) }
	l.limit = newLimiter(opts.Burst, opts.Window)
	r, err := ringFor(opts, l.logger, l.now)
	if err != nil {
		return nil, err
	}
	l.ring = r
	return l, nil
}

// ringFor returns the ring that opts name: their Table's, their Store's,
// or one in memory.
func ringFor(opts Options, logger *zap.Logger, now func() time.Time) (*ring, error) {
	var id any = opts.Store
	open := func() (keeper, uint64, error) { return openStoreRing(opts.Store) }
	switch {
	case opts.Store != nil && opts.Table != nil:
		return nil, errors.New("audit: Options.Store and Options.Table exclude each other")
	case opts.Table != nil:
		id = opts.Table
		open = func() (keeper, uint64, error) { return &tableKeeper{t: opts.Table, now: now}, 1, nil }
	case opts.Store == nil:
		st := store.NewMemory()
		id = st
		open = func() (keeper, uint64, error) { return openStoreRing(st) }
	}
	return acquire(id, open, opts.Max, opts.Buffer, logger, now)
}

// HashArgs returns ArgsHash of raw under the Log's ArgsKey.
func (l *Log) HashArgs(raw []byte) string {
	if len(l.argsKey) == 0 {
		return ""
	}
	mac := l.macs.Get().(hash.Hash)
	defer l.macs.Put(mac)
	return sumArgs(mac, raw)
}

// Record logs e and queues it for the ring. It never waits for the store:
// when the store lags too far behind, the event is dropped from the ring
// (and counted in Dropped), its line logged all the same. An attempt
// beyond the Burst of its user's window is logged too, but only counted
// for the ring (see Options.Burst). Record fills in Time when zero and
// cuts the text fields to their bound (256 bytes), so that a tool name an
// agent made up cannot bloat the log.
func (l *Log) Record(e Event) {
	now := l.now()
	if e.Time.IsZero() {
		e.Time = now
	}
	for _, f := range []*string{&e.User, &e.Connector, &e.Tool, &e.Detail} {
		*f = shorten(*f, maxField)
	}
	l.log(e)
	if l.closed.Load() {
		return
	}
	keep, closed := l.limit.admit(e, now)
	l.summarize(closed)
	if keep {
		l.keep(e)
	}
}

// summarize logs and keeps the events that stand for closed windows of
// attempts.
func (l *Log) summarize(events []Event) {
	for _, e := range events {
		l.log(e)
		l.keep(e)
	}
}

// keep queues e for the ring, counting it in Dropped if there is no room.
func (l *Log) keep(e Event) {
	if !l.ring.offer(e) {
		l.dropped()
	}
}

// messages are the log messages of each kind.
var messages = map[Kind]string{
	KindConsentStart:   "consent started",
	KindConsentFinish:  "consent finished",
	KindRefreshFailure: "token refresh failed",
	KindDisconnect:     "connector disconnected",
	KindRevocation:     "token revocation",
	KindAdminChange:    "admin change",
	KindDrift:          "pinned item changed upstream",
	KindToolCall:       "tool call",

	KindApprovalRequested: "approval requested",
	KindApprovalApproved:  "call approved",
	KindApprovalDenied:    "call denied",
	KindApprovalUsed:      "approval used",
	KindApprovalExpired:   "approval expired",
}

// log writes e's line.
func (l *Log) log(e Event) {
	msg, ok := messages[e.Kind]
	if !ok {
		msg = "audit event"
	}
	ce := l.logger.Check(zapcore.InfoLevel, msg)
	if ce == nil {
		return
	}
	held := lineFields.Get().(*[]zap.Field)
	defer lineFields.Put(held)
	fields := append((*held)[:0], zap.String("kind", string(e.Kind)))
	for _, f := range [...]struct{ key, value string }{
		{"user", e.User}, {"connector", e.Connector}, {"tool", e.Tool},
		{"decision", e.Decision}, {"outcome", e.Outcome},
	} {
		if f.value != "" {
			fields = append(fields, zap.String(f.key, f.value))
		}
	}
	if e.Duration != 0 {
		fields = append(fields, zap.Float64("duration_ms", milliseconds(e.Duration)))
	}
	if e.ArgsHash != "" {
		fields = append(fields, zap.String("args_hash", e.ArgsHash))
	}
	if e.Count != 0 {
		fields = append(fields, zap.Int("count", e.Count))
	}
	if e.Detail != "" {
		fields = append(fields, zap.String("detail", e.Detail))
	}
	ce.Time = e.Time
	ce.Write(fields...)
	// The core has encoded the line; the slice keeps no event's text.
	clear(fields)
	*held = fields[:0]
}

// lineFields holds the field slices of audit lines for reuse: a line's
// ten fields are 640 bytes, which every tool call would allocate anew.
// A zap core encodes the fields during Write and keeps none of them.
var lineFields = sync.Pool{New: func() any {
	s := make([]zap.Field, 0, 10)
	return &s
}}

// dropped counts an event the ring had no room for, and warns at most
// once per dropWarning.
func (l *Log) dropped() {
	n := l.ring.drops.Add(1)
	now := l.now().UnixNano()
	last := l.ring.warned.Load()
	if last != 0 && now-last < int64(dropWarning) || !l.ring.warned.CompareAndSwap(last, now) {
		return
	}
	l.logger.Warn("the audit store falls behind: events are logged but dropped from the audit ring",
		zap.Uint64("dropped_total", n))
}

// Dropped returns how many events the ring (shared by the Logs on one
// store) has dropped: for want of room in the buffer, or because the
// store refused them.
func (l *Log) Dropped() uint64 { return l.ring.drops.Load() }

// Query returns the events of the ring (or the Table) that f selects, of
// every class, newest first. It first records the counts of the windows
// of attempts that are over, and waits for the events recorded before it
// to reach the store, so a Record followed by a Query sees its event.
func (l *Log) Query(ctx context.Context, f Filter) ([]Event, error) {
	if l.closed.Load() {
		return nil, errors.New("audit: the log is closed")
	}
	l.summarize(l.limit.due(l.now()))
	if err := l.ring.flush(ctx); err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	size := int(l.ring.max.Load())
	f.Limit = min(f.Limit, size*int(numClasses))
	return l.ring.keep.query(ctx, f, size)
}

// matches reports whether e passes f's equality filters.
func (f Filter) matches(e Event) bool {
	return (f.User == "" || e.User == f.User) &&
		(f.Connector == "" || e.Connector == f.Connector) &&
		(f.Kind == "" || e.Kind == f.Kind)
}

// Close records the counts of the windows of attempts still open, writes
// what waits for the store, if this is the last open Log on it, and stops
// using the store; the caller may close the store then. Events recorded
// after Close are logged only. Closing twice is not an error.
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.summarize(l.limit.drain(l.now()))
	return release(l.ring)
}

// decode reads a stored event.
func decode(value []byte) (Event, error) {
	var e Event
	err := json.Unmarshal(value, &e)
	return e, err
}

// ParseFilter reads a filter from a query: since (RFC 3339, or a
// positive duration back from now such as 1h), user, connector, kind and
// limit (a positive number).
func ParseFilter(q url.Values, now time.Time) (Filter, error) {
	f := Filter{User: q.Get("user"), Connector: q.Get("connector"), Kind: Kind(q.Get("kind"))}
	if s := q.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			f.Since = now.Add(-d)
		} else if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return f, fmt.Errorf("since %q is neither an RFC 3339 time nor a positive duration such as 1h", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return f, fmt.Errorf("limit %q is not a positive number", s)
		}
		f.Limit = n
	}
	return f, nil
}
