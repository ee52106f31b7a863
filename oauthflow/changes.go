package oauthflow

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// A Manager keeps each grant it read in memory, and the hot path hands out
// the token from there without asking the store. So that a disconnect
// through one Manager stops every other Manager on the store at once (the
// old config generation still draining after a reload, say), and not only
// when the upstream refuses the token or it expires, every grant record
// has a change count in the Locks that those Managers share: every write
// of the record adds one, and a cached copy serves only while the count
// is the one seen before the copy was read. Checking it is one atomic
// load; the store is read again only after a change. Managers in other
// processes (or with other Locks) add one through a store notice (see
// notices.go).

// changes counts the writes of each record, by the record's notice id
// (noticeID of its store key), so that a notice, which names a record by
// that id only, finds its count. The zero value is ready.
type changes struct {
	mu sync.Mutex
	m  map[string]*counter // guarded by mu; one per record ever cached
}

// counter is one record's change count, with a way to wait for its next
// change.
type counter struct {
	n atomic.Uint64

	mu   sync.Mutex
	next chan struct{} // closed at the next change; nil until someone waits
}

// add counts a change, wakes whoever waits for it, and returns the count.
func (c *counter) add() uint64 {
	n := c.n.Add(1)
	c.mu.Lock()
	if c.next != nil {
		close(c.next)
		c.next = nil
	}
	c.mu.Unlock()
	return n
}

// stamp is where a record's change count stood when a copy of it was
// read: the copy is current while the count stays there.
type stamp struct {
	count *counter
	seen  uint64
}

// current reports whether no write of the record was counted since the
// copy was read.
func (s stamp) current() bool { return s.count.n.Load() == s.seen }

// changed returns a channel that is closed once a write of the record is
// counted after s was taken: at once if one already was.
func (s stamp) changed() <-chan struct{} {
	s.count.mu.Lock()
	defer s.count.mu.Unlock()
	if s.count.next == nil {
		s.count.next = make(chan struct{})
	}
	next := s.count.next
	if !s.current() {
		// Counted before the channel was made: nothing would close it.
		close(next)
		s.count.next = nil
	}
	return next
}

// stamp returns the change count of the record under key as it stands
// now. Take it before reading the record: a write counted after it makes
// the copy stale, even if the read saw the older value.
func (c *changes) stamp(key string) stamp {
	id := noticeID(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*counter)
	}
	n := c.m[id]
	if n == nil {
		n = new(counter)
		c.m[id] = n
	}
	return stamp{count: n, seen: n.n.Load()}
}

// changed counts a write of the record whose notice id is id, made
// outside any stamp (a delete, another instance's write). A record that
// no one has cached needs no count: a later reader reads the store after
// taking its stamp.
func (c *changes) changed(id string) {
	c.mu.Lock()
	n := c.m[id]
	c.mu.Unlock()
	if n != nil {
		n.add()
	}
}

// wrote counts the write that the holder of s just made, and returns the
// stamp of what it wrote: current, unless some other write was counted
// since s was taken, in which case what it wrote may be stale already.
func (s stamp) wrote() stamp {
	n := s.count.add()
	if n == s.seen+1 {
		s.seen = n
	}
	return s
}

// noticeID names the record under key in a notice to other instances,
// without revealing it: a store key holds a user's id, and a notice
// travels in the clear (PostgreSQL's NOTIFY).
func noticeID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Changed tells every Manager sharing l that the record under key (a key
// of the Store) changed outside them, as another instance's write that a
// shared database announces: each drops its copy in memory before using
// it again, and a token whose grant was disconnected is refused at once.
// Managers count their own writes, and hear other instances' through the
// store's notices when it has them; they need not call it.
func (l *Locks) Changed(key string) { l.changes.changed(noticeID(key)) }
