package oauthflow

import (
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
// load; the store is read again only after a change.

// changes counts the writes of each record, by store key. The zero value
// is ready.
type changes struct {
	mu sync.Mutex
	m  map[string]*atomic.Uint64 // guarded by mu; one per record ever cached
}

// stamp is where a record's change count stood when a copy of it was
// read: the copy is current while the count stays there.
type stamp struct {
	count *atomic.Uint64
	seen  uint64
}

// current reports whether no write of the record was counted since the
// copy was read.
func (s stamp) current() bool { return s.count.Load() == s.seen }

// stamp returns the change count of the record under key as it stands
// now. Take it before reading the record: a write counted after it makes
// the copy stale, even if the read saw the older value.
func (c *changes) stamp(key string) stamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*atomic.Uint64)
	}
	n := c.m[key]
	if n == nil {
		n = new(atomic.Uint64)
		c.m[key] = n
	}
	return stamp{count: n, seen: n.Load()}
}

// changed counts a write of the record under key, made outside any stamp
// (such as a delete). A record that no one has cached needs no count: a
// later reader reads the store after taking its stamp.
func (c *changes) changed(key string) {
	c.mu.Lock()
	n := c.m[key]
	c.mu.Unlock()
	if n != nil {
		n.Add(1)
	}
}

// wrote counts the write that the holder of s just made, and returns the
// stamp of what it wrote: current, unless some other write was counted
// since s was taken, in which case what it wrote may be stale already.
func (s stamp) wrote() stamp {
	n := s.count.Add(1)
	if n == s.seen+1 {
		s.seen = n
	}
	return s
}

// Changed tells every Manager sharing l that the record under key (a key
// of the Store) changed outside them, as another instance's write that a
// shared database announces: each drops its copy in memory before using
// it again, and a token whose grant was disconnected is refused at once.
// Managers count their own writes; they need not call it.
func (l *Locks) Changed(key string) { l.changes.changed(key) }
