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

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// entry is a decoded grant as the hot path reads it. It is never changed
// once published: a write replaces it.
type entry struct {
	rec    grantRecord
	token  Token     // the credential, when rec holds an access token
	loaded time.Time // when it was read or written
	stamp  stamp     // the record's change count when it was read
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
// not before it is stored, nor after the record changed elsewhere (a
// disconnect through another Manager on the store).
func (e *entry) fresh(now time.Time) bool {
	return !e.unsaved && e.stamp.current() && e.rec.usable(now)
}

// usable reports whether the grant is active with an access token that
// is not about to expire. A token without expiry serves until refused.
// "About to" is expirySkew, or half the token's lifetime if that is less,
// so that a token issued for a few seconds is not refreshed on every call.
func (r *grantRecord) usable(now time.Time) bool {
	if r.Connection.State != connectors.StateActive || r.AccessToken == "" {
		return false
	}
	if r.Expiry.IsZero() {
		return true
	}
	skew := min(expirySkew, r.Expiry.Sub(r.Obtained)/2)
	return now.Before(r.Expiry.Add(-skew))
}

// cached returns the entry of subject in memory, or nil.
func (c *connector) cached(subject string) *entry {
	c.mu.RLock()
	e := c.grants[subject]
	c.mu.RUnlock()
	return e
}

// remember publishes rec, stamped st, as subject's entry. Only writers,
// which hold the grant's lock, call it.
func (m *Manager) remember(c *connector, subject string, rec grantRecord, st stamp, unsaved bool) *entry {
	e := m.newEntry(c, subject, rec, st, unsaved)
	c.mu.Lock()
	c.grants[subject] = e
	c.mu.Unlock()
	return e
}

// rememberRead publishes rec, read from the store without the grant's
// lock, unless the entry changed from old since the read began: a write
// published meanwhile is at least as new, and replacing it with an older
// read could resurrect a disconnected token.
func (m *Manager) rememberRead(c *connector, subject string, rec grantRecord, st stamp, old *entry) *entry {
	e := m.newEntry(c, subject, rec, st, false)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.grants[subject]; cur != old {
		return cur
	}
	c.grants[subject] = e
	return e
}

func (m *Manager) newEntry(c *connector, subject string, rec grantRecord, st stamp, unsaved bool) *entry {
	e := &entry{rec: rec, loaded: m.now(), stamp: st, unsaved: unsaved}
	if rec.AccessToken != "" {
		e.token = Token{Header: "Bearer " + rec.AccessToken, Key: tokenKey(c.id, subject, rec)}
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
// Manager changed it since. A grant that is not active is read again
// after a while, to see what other instances wrote.
func (m *Manager) load(ctx context.Context, c *connector, subject string) (*entry, error) {
	e := c.cached(subject)
	if e != nil && e.stamp.current() &&
		(e.unsaved || e.rec.Connection.State == connectors.StateActive || m.now().Sub(e.loaded) < recheck) {
		return e, nil
	}
	key := grantKey(c.id, subject)
	st := m.locks.changes.stamp(key)
	rec, err := m.readGrant(ctx, key)
	if err != nil {
		return nil, err
	}
	return m.rememberRead(c, subject, rec, st, e), nil
}

// readGrant reads a grant from the store; a missing one is the zero
// record.
func (m *Manager) readGrant(ctx context.Context, key string) (grantRecord, error) {
	var rec grantRecord
	err := getJSON(ctx, m.store, key, (*grantWire)(&rec))
	if errors.Is(err, store.ErrNotFound) {
		return grantRecord{}, nil
	}
	if err != nil {
		return grantRecord{}, fmt.Errorf("reading the grant: %w", err)
	}
	return rec, nil
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
// made with the grant's in one batch (see writeAll), before it: all of
// them or none are stored.
func (m *Manager) withGrantAnd(ctx context.Context, c *connector, subject string, change func(*grantRecord) (bool, []store.Write, error)) (*entry, error) {
	key := grantKey(c.id, subject)
	defer m.locks.lock(key)()
	st := m.locks.changes.stamp(key)
	rec, dirty, err := m.current(ctx, c, subject)
	if err != nil {
		return nil, err
	}
	changed, writes, cerr := change(&rec)
	if !changed && !dirty {
		return m.remember(c, subject, rec, st, false), cerr
	}
	w, err := jsonWrite(key, (*grantWire)(&rec), 0)
	if err == nil {
		err = writeAll(ctx, m.store, append(writes, w))
	}
	if err != nil {
		m.remember(c, subject, rec, st, true)
		return nil, fmt.Errorf("storing the grant: %w", err)
	}
	// Every Manager sharing the Locks drops its copy before its next use.
	return m.remember(c, subject, rec, st.wrote(), false), cerr
}

// current is the latest record of subject's grant: the store's, unless
// memory holds a newer, unsaved one (dirty) that no other Manager has
// overwritten since. If the store cannot be read, the record in memory
// stands in for it, so that a disconnect still takes effect here at once.
func (m *Manager) current(ctx context.Context, c *connector, subject string) (rec grantRecord, dirty bool, err error) {
	e := c.cached(subject)
	if e != nil && e.unsaved && e.stamp.current() {
		return e.rec, true, nil
	}
	rec, err = m.readGrant(ctx, grantKey(c.id, subject))
	if err != nil && e != nil {
		return e.rec, true, nil
	}
	return rec, false, err
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
// keep in memory at once (see Changed). The zero Locks is ready.
type Locks struct {
	mu sync.Mutex
	m  map[string]*keyLock // guarded by mu

	changes changes
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
