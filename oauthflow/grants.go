package oauthflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// entry is a decoded grant as the hot path reads it. It is never changed
// once published: a write replaces it.
type entry struct {
	rec    grantRecord
	token  Token     // the credential, when rec holds an access token
	loaded time.Time // when it was read or written
	// staleAt is when the token stops being handed out from memory: when
	// it is about to expire, or maxCacheAge after loaded, whichever comes
	// first; zero if it never is (no token, or a connection not active).
	staleAt time.Time
	stamp   stamp // the record's change count when it was read
	// version is the store's version of the record rec was read as or
	// derived from: what a write of an unsaved rec is conditional on.
	version uint64
	// unsaved: the store write of rec failed, so rec is newer than the
	// store. The next write starts from rec, not from the store, so that
	// a rotated refresh token is not lost.
	unsaved bool
}

// Format prints the entry with its secrets redacted. Its fields are
// unexported, which fmt prints without calling their own Format, so it
// hands fmt exported ones instead, each of which redacts itself.
func (e *entry) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), struct {
		Rec     grantRecord
		Token   Token
		Unsaved bool
	}{e.rec, e.token, e.unsaved})
}

// fresh reports whether the entry's access token may be handed out now:
// usable, but not before it is stored, nor after the record changed
// elsewhere (a disconnect through another Manager on the store), nor once
// it is maxCacheAge old, in case a notice of such a change was lost.
func (e *entry) fresh(now time.Time) bool {
	return !e.unsaved && e.stamp.current() && now.Before(e.staleAt)
}

// usable reports whether the grant is active with an access token that
// is not about to expire. A token without expiry serves until refused.
func (r *grantRecord) usable(now time.Time) bool {
	until, ok := r.usableUntil()
	return ok && (until.IsZero() || now.Before(until))
}

// usableUntil is when the access token becomes about to expire (zero: a
// token without expiry), and ok is false if there is no usable token at
// all. "About to" is expirySkew, or half the token's lifetime if that is
// less, so that a token issued for a few seconds is not refreshed on
// every call.
func (r *grantRecord) usableUntil() (until time.Time, ok bool) {
	if r.Connection.State != connectors.StateActive || r.AccessToken == "" {
		return time.Time{}, false
	}
	if r.Expiry.IsZero() {
		return time.Time{}, true
	}
	return r.Expiry.Add(-min(expirySkew, r.Expiry.Sub(r.Obtained)/2)), true
}

// cached returns the entry of subject in memory, or nil.
func (c *connector) cached(subject string) *entry {
	c.mu.RLock()
	e := c.grants[subject]
	c.mu.RUnlock()
	return e
}

// remember publishes g, stamped st, as subject's entry. Only writers,
// which hold the grant's lock, call it.
func (m *Manager) remember(c *connector, subject string, g grantRead, st stamp, unsaved bool) *entry {
	e := m.newEntry(c, subject, g, st, unsaved)
	c.mu.Lock()
	c.grants[subject] = e
	c.mu.Unlock()
	return e
}

// rememberRead publishes g, read from the store without the grant's
// lock, unless the entry changed from old since the read began: a write
// published meanwhile is at least as new, and replacing it with an older
// read could resurrect a disconnected token.
func (m *Manager) rememberRead(c *connector, subject string, g grantRead, st stamp, old *entry) *entry {
	e := m.newEntry(c, subject, g, st, false)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.grants[subject]; cur != old {
		return cur
	}
	c.grants[subject] = e
	return e
}

func (m *Manager) newEntry(c *connector, subject string, g grantRead, st stamp, unsaved bool) *entry {
	e := &entry{rec: g.rec, loaded: m.now(), stamp: st, version: g.version, unsaved: unsaved}
	// A grant that does not fit the connector is never handed out from
	// memory: Token's slow path refuses it.
	if until, ok := g.rec.usableUntil(); ok && c.fits(&g.rec) {
		e.staleAt = e.loaded.Add(maxCacheAge)
		if !until.IsZero() && until.Before(e.staleAt) {
			e.staleAt = until
		}
	}
	if g.rec.AccessToken != "" {
		e.token = Token{Header: g.rec.authorization(), Key: tokenKey(c.id, subject, g.rec)}
		m.bindToken(c, &g.rec, &e.token)
	}
	return e
}

// tokenKey is a non-secret name for a grant, for partitioning caches by
// credential: it changes with each consent, not with each refresh.
func tokenKey(connector, subject string, rec grantRecord) string {
	h := sha256.New()
	for _, s := range []string{connector, subject, rec.Issuer, strconv.FormatUint(rec.Generation, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "oauth:" + hex.EncodeToString(h.Sum(nil)[:12])
}

// load returns subject's grant, from memory when it can: unless another
// Manager changed it since, or it is older than maxCacheAge. A grant
// that is not active is read again sooner, after recheck, to see a
// consent that another instance completed.
func (m *Manager) load(ctx context.Context, c *connector, subject string) (*entry, error) {
	e := c.cached(subject)
	if e != nil && e.stamp.current() && (e.unsaved || m.now().Sub(e.loaded) < e.maxAge()) {
		return e, nil
	}
	key := grantKey(c.id, subject)
	st := m.locks.changes.stamp(key)
	g, err := m.readGrant(ctx, key)
	if err != nil {
		return m.keepOnError(c, subject, e, err)
	}
	return m.rememberRead(c, subject, g, st, e), nil
}

// keepOnError serves e for another maxCacheAge when the store cannot be
// read to check it, unless a change of it was announced: with the
// database down, calls with a cached token go on, while no instance can
// change the grant (a disconnect's write fails too).
func (m *Manager) keepOnError(c *connector, subject string, e *entry, err error) (*entry, error) {
	if e == nil || !e.stamp.current() {
		return nil, err
	}
	m.log.Warn("the store cannot be read; the grant in memory serves on", zap.String("connector", c.id), zap.Error(err))
	return m.rememberRead(c, subject, grantRead{rec: e.rec, version: e.version}, e.stamp, e), nil
}

// maxAge is how long the entry serves from memory.
func (e *entry) maxAge() time.Duration {
	if e.rec.Connection.State == connectors.StateActive {
		return maxCacheAge
	}
	return recheck
}

// grantRead is a grant record as read from the store, with its version
// there (zero: none stored, or a store without versions).
type grantRead struct {
	rec     grantRecord
	version uint64
	// dirty: rec is an unsaved record from memory, newer than the
	// store's.
	dirty bool
}

// readGrant reads a grant from the store; a missing one is the zero
// record.
func (m *Manager) readGrant(ctx context.Context, key string) (grantRead, error) {
	var g grantRead
	var err error
	g.version, err = getJSONVersioned(ctx, m.store, key, (*grantWire)(&g.rec))
	if errors.Is(err, store.ErrNotFound) {
		return grantRead{}, nil
	}
	if err != nil {
		return grantRead{}, fmt.Errorf("reading the grant: %w", err)
	}
	return g, nil
}

// withGrant changes subject's grant with its lock held: it reads the
// current record, lets change edit it, and, if change reports a change,
// stores it before publishing it. change may call the authorization
// server; holding the lock meanwhile keeps a disconnect from being undone
// by a refresh that ends after it.
// If the store write fails, the new record is still published (marked
// unsaved) so that a rotated refresh token survives in memory, and the
// error is returned.
func (m *Manager) withGrant(ctx context.Context, c *connector, subject string, change func(*grantRecord) (bool, error)) (*entry, error) {
	return m.withGrantAnd(ctx, c, subject, func(g *grantRecord) (bool, []store.Write, error) {
		changed, err := change(g)
		return changed, nil, err
	})
}

// withGrantAnd is withGrant for a change that comes with other writes,
// made before the grant's (see writeGrant). The grant's lease is taken
// if it can be; if not, the change is made without it, since a
// disconnect must take effect even so, and the write stays conditional.
func (m *Manager) withGrantAnd(ctx context.Context, c *connector, subject string, change func(*grantRecord) (bool, []store.Write, error)) (*entry, error) {
	return m.changeGrant(ctx, c, subject, false, change)
}

// maxGrantAttempts bounds how many times a change is made again on a
// fresh read after another instance wrote the grant first.
const maxGrantAttempts = 3

// changeGrant makes change under the grant's lock and its lease in the
// store; exclusive refuses to make it without the lease (a refresh). The
// write is conditional on the version read: when another instance wrote
// the grant meanwhile, change runs again on what it wrote. Once the lease
// is released, the other instances hear of the write.
func (m *Manager) changeGrant(ctx context.Context, c *connector, subject string, exclusive bool, change func(*grantRecord) (bool, []store.Write, error)) (*entry, error) {
	key := grantKey(c.id, subject)
	defer m.locks.lock(key)()
	lease, err := m.acquire(ctx, key)
	if err != nil && exclusive {
		return nil, err
	}
	if err != nil {
		m.log.Warn("changing a grant without its lease", zap.String("connector", c.id), zap.Error(err))
	}
	var out changeResult
	for range maxGrantAttempts {
		if out = m.changeOnce(ctx, c, subject, lease, change); !out.lost {
			break
		}
	}
	m.release(ctx, lease, out.unsaved)
	switch {
	case out.lost:
		return nil, fmt.Errorf("%w: it changed %d times while this change was made", ErrBusy, maxGrantAttempts)
	case out.wrote:
		m.announce(ctx, key)
	}
	return out.e, out.err
}

// changeResult is how one attempt at a change ended.
type changeResult struct {
	e       *entry
	err     error
	wrote   bool // the grant was stored
	unsaved bool // the store write failed; memory holds the change
	lost    bool // another instance wrote the grant first
}

// changeOnce reads the grant, makes change and writes the result,
// conditional on the version read.
func (m *Manager) changeOnce(ctx context.Context, c *connector, subject string, lease *grantLease, change func(*grantRecord) (bool, []store.Write, error)) changeResult {
	key := grantKey(c.id, subject)
	st := m.locks.changes.stamp(key)
	g, err := m.current(ctx, c, subject)
	if err != nil {
		return changeResult{err: err}
	}
	changed, writes, cerr := change(&g.rec)
	if !changed && !g.dirty {
		return changeResult{e: m.remember(c, subject, g, st, false), err: cerr}
	}
	lease.renew(ctx)
	ok, err := m.writeGrant(ctx, key, g, writes)
	switch {
	case err != nil:
		m.remember(c, subject, g, st, true)
		return changeResult{err: fmt.Errorf("storing the grant: %w", err), unsaved: true}
	case !ok:
		// Whatever memory holds is older than the store now.
		m.locks.changes.changed(noticeID(key))
		return changeResult{lost: true}
	}
	// Every Manager sharing the Locks drops its copy before its next use.
	return changeResult{e: m.remember(c, subject, g, st.wrote(), false), err: cerr, wrote: true}
}

// writeGrant stores g's record under key with writes. On a store with
// versions, writes go first and the grant's write last, only if the
// record there is still at g's version; when it is not, writes are taken
// back and it reports false. So a crash between them leaves writes
// without the grant's: for a disconnect, a tombstone for tokens that the
// grant still holds, which are then revoked, failing closed. On another
// store, all go in one batch (see writeAll).
func (m *Manager) writeGrant(ctx context.Context, key string, g grantRead, writes []store.Write) (bool, error) {
	w, err := jsonWrite(key, (*grantWire)(&g.rec), 0)
	if err != nil {
		return false, err
	}
	v, ok := m.store.(store.Versioned)
	if !ok {
		return true, writeAll(ctx, m.store, append(writes, w))
	}
	if len(writes) > 0 {
		if err := writeAll(ctx, m.store, writes); err != nil {
			return false, err
		}
	}
	ok, err = v.PutIfVersion(ctx, key, w.Value, 0, g.version)
	if err == nil && !ok {
		m.takeBack(ctx, writes)
	}
	return ok, err
}

// takeBack deletes what writes stored.
func (m *Manager) takeBack(ctx context.Context, writes []store.Write) {
	for _, w := range writes {
		if w.Delete {
			continue
		}
		if err := m.store.Delete(ctx, w.Key); err != nil {
			m.log.Error("taking back a write beside a grant's", zap.Error(err))
		}
	}
}

// current is the latest record of subject's grant: the store's, unless
// memory holds a newer, unsaved one (dirty) that no other Manager has
// overwritten since. If the store cannot be read, the record in memory
// stands in for it, so that a disconnect still takes effect here at once.
func (m *Manager) current(ctx context.Context, c *connector, subject string) (grantRead, error) {
	e := c.cached(subject)
	if e != nil && e.unsaved && e.stamp.current() {
		return grantRead{rec: e.rec, version: e.version, dirty: true}, nil
	}
	g, err := m.readGrant(ctx, grantKey(c.id, subject))
	if err != nil && e != nil {
		return grantRead{rec: e.rec, version: e.version, dirty: true}, nil
	}
	return g, err
}

// consentError explains why a connection yields no token.
func (c *connector) consentError(conn connectors.Connection) *ConsentError {
	reason := conn.Reason
	if reason == "" {
		reason = map[connectors.State]string{
			connectors.StateNone:           "no one has connected it yet",
			connectors.StatePending:        "consent has started but is not complete",
			connectors.StateExpired:        "the access token expired",
			connectors.StateReauthRequired: "the authorization server wants consent again",
			connectors.StateError:          "the connection broke",
			connectors.StateMisconfigured:  "an admin must change the connector",
			connectors.StateDisconnected:   "it was disconnected",
		}[conn.State]
	}
	if c.cfg.Consent == Shared && conn.Status() == connectors.StatusNeedsAuth {
		reason += " (an admin must connect it)"
	}
	return &ConsentError{Connector: c.id, Status: conn.Status(), Reason: reason}
}

// Locks serializes the changes to each grant: a refresh, a callback, a
// disconnect. Managers that share one store in one process, such as the
// old and new config generations during a Caddy reload, should share one
// Locks, so that one grant is never refreshed twice at once: an
// authorization server that rotates refresh tokens takes the second
// refresh for a replay and revokes the grant. Through it, too, a change of
// a grant by one Manager (a disconnect) reaches the tokens the others
// keep in memory at once (see Changed). Across processes, the store's
// leases and notices do the same (lease.go, notices.go): these Locks are
// the first level, so that of the Managers sharing them only one at a
// time asks the store for a grant's lease. The zero Locks is ready.
type Locks struct {
	mu sync.Mutex
	m  map[string]*keyLock // guarded by mu

	changes changes

	idOnce sync.Once
	id     string // names these Locks as a lease holder; see holder
}

type keyLock struct {
	sync.Mutex
	refs int // guarded by Locks.mu
}

// lock locks key and returns its unlock.
func (l *Locks) lock(key string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*keyLock)
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.Lock()
	return func() {
		k.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
