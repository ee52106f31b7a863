package audit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxBatch bounds the events of one store transaction.
const maxBatch = 256

// maxBatchBytes bounds what the events of one store transaction cost, by
// batchCost. Badger takes at most 15 % of its memtable in a transaction,
// 157,286 bytes at the store's 1 MiB, and a batch past that failed whole,
// every event in it lost: 256 events whose texts JSON escapes at six
// bytes a byte are 1.5 MB. An ordinary tool call costs about 400 bytes, so
// a batch of maxBatch of them still fits (TestRingBatchBytes).
const maxBatchBytes = 128 << 10

// badgerEntry is what Badger counts for an entry of a transaction beyond
// its key and value: its two meta bytes and the version in its key (10),
// rounded up.
const badgerEntry = 16

// fixedCost bounds what an event costs a transaction beside its texts:
// the keys of a page and of a page it expires, each a Badger entry (a
// page holds many events, so this is generous), and its line's number,
// space and newline (22 bytes), the JSON of its field names (119), time
// (35) and numbers (44).
const fixedCost = 2*(len(Prefix)+len("call-attempts/")+20+len("-256")+badgerEntry) + 222

// errorWarning is how often, at most, a ring logs that the store failed.
const errorWarning = time.Minute

// gatherDelay is how long the writer lets events gather before it writes
// them, unless a full batch is waiting sooner. Each write is one store
// transaction and, on Badger, one sync of its log: written as they came,
// calls at thousands a second made a transaction of one or two events
// each, which cost the gateway more CPU than the calls' own work. At
// 5,000 calls a second a full batch gathers in about 50 ms. A Query or a
// Close does not wait for it, and every event's line is logged at once.
const gatherDelay = 50 * time.Millisecond

// item is an event queued for the ring, numbered already.
type item struct {
	seq   uint64
	class class
	event Event
}

// keeper is where a ring keeps its events: the rings in a key/value
// Store (storeRing), or a Table. Only the ring's writer calls write and
// trim, one call at a time.
type keeper interface {
	// write keeps batch; a keeper may delete the events beyond max in
	// each class at once, as the store's rings do in the same
	// transaction.
	write(batch []item, max int) error
	// trim deletes the events beyond max in each class.
	trim(max int) error
	// query returns the events f selects, newest first, at most f.Limit
	// (which is set), of the newest max of each class.
	query(ctx context.Context, f Filter, max int) ([]Event, error)
}

// ring is the audit ring of one store or table: a buffer per class and
// the one goroutine that writes them all to the keeper, in batches, under
// one sequence. Every Log on the store shares it, so that the old and the
// new config generation of a reload, both writing for a moment, never
// number two events alike. A buffer per class keeps a flood of tool calls
// from crowding an admin change out of the buffer as well as out of the
// ring.
type ring struct {
	id     any    // what Logs find the ring by: its Store or its Table
	keep   keeper // where the events go
	now    func() time.Time
	max    atomic.Int64               // events kept per class
	logger atomic.Pointer[zap.Logger] // of the latest Log, for store failures

	// mu orders the numbering and the queueing of events: the events of a
	// class reach the writer in the order of their numbers, and the
	// numbers are the order in which events were recorded, across
	// classes, which is the order Query returns them in.
	mu   sync.Mutex
	next uint64 // the number of the next event; guarded by mu
	// queue holds each class's events waiting for the writer, oldest
	// first, at most buffer of them; guarded by mu. A slice rather than
	// a buffered channel, so that a large buffer costs memory only while
	// the store lags behind.
	queue  [numClasses][]item
	buffer int

	wake    chan struct{} // something is queued
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}

	drops     atomic.Uint64
	warned    atomic.Int64 // when dropped last warned, in Unix nanoseconds
	lastError time.Time    // when the writer last logged a failure; writer only
	written   int          // events written since the last trim; writer only

	refs int // Logs using the ring; guarded by rings.mu
}

// rings are the open rings, by Store or Table.
var rings = struct {
	mu sync.Mutex
	m  map[any]*ring
}{m: map[any]*ring{}}

// opener opens a keeper, returning it and the number of the next event.
type opener func() (keeper, uint64, error)

// acquire returns the ring of id, opening it with open (which recovers
// its sequence) if no Log uses it.
func acquire(id any, open opener, size, buffer int, logger *zap.Logger, now func() time.Time) (*ring, error) {
	rings.mu.Lock()
	defer rings.mu.Unlock()
	if r := rings.m[id]; r != nil {
		r.max.Store(int64(size))
		r.logger.Store(logger)
		r.refs++
		return r, nil
	}
	keep, next, err := open()
	if err != nil {
		return nil, err
	}
	r := newRing(id, keep, next, size, buffer, logger, now)
	rings.m[id] = r
	r.refs++
	return r, nil
}

// release drops a Log's use of r; the last one stops the writer, once it
// has written what waits.
func release(r *ring) error {
	rings.mu.Lock()
	r.refs--
	last := r.refs == 0
	if last && rings.m[r.id] == r {
		delete(rings.m, r.id)
	}
	rings.mu.Unlock()
	if last {
		close(r.stop)
		<-r.done
	}
	return nil
}

// newRing starts the writer of a ring over keep, whose next event is
// numbered next.
func newRing(id any, keep keeper, next uint64, size, buffer int, logger *zap.Logger, now func() time.Time) *ring {
	r := &ring{id: id, keep: keep, now: now, next: next, buffer: buffer, wake: make(chan struct{}, 1),
		flushes: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	r.max.Store(int64(size))
	r.logger.Store(logger)
	go r.run()
	return r
}

// offer numbers e and queues it for the writer, or reports that the
// buffer of its class is full.
func (r *ring) offer(e Event) bool {
	c := classOf(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue[c]) >= r.buffer {
		return false
	}
	r.queue[c] = append(r.queue[c], item{seq: r.next, class: c, event: e})
	r.next++
	select {
	case r.wake <- struct{}{}:
	default: // the writer has a wake-up pending already
	}
	return true
}

// flush waits until the events queued before it are written.
func (r *ring) flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case r.flushes <- ack:
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer: it lets events gather for gatherDelay, or until a
// full batch waits, then takes what is queued, up to maxBatch events at a
// time, and writes each batch in one store transaction, so that under
// load many events share one disk sync.
func (r *ring) run() {
	defer close(r.done)
	r.trim() // rings that a larger Max filled
	batch := make([]item, 0, maxBatch)
	gather := time.NewTimer(gatherDelay)
	gather.Stop()
	gathering := false
	for {
		select {
		case <-r.wake:
			if r.queued() < maxBatch {
				if !gathering {
					gather.Reset(gatherDelay)
					gathering = true
				}
				continue
			}
		case <-gather.C:
		case ack := <-r.flushes:
			r.drain(batch)
			close(ack)
			continue
		case <-r.stop:
			r.drain(batch)
			return
		}
		gather.Stop()
		gathering = false
		r.drain(batch)
	}
}

// queued is how many events wait for the writer, in every class.
func (r *ring) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.queue {
		n += len(q)
	}
	return n
}

// take adds to batch what is queued, up to maxBatch events and
// maxBatchBytes of their batchCost, and at least one event: the classes in
// order, so that a flood of calls delays the admin and auth events least.
func (r *ring) take(batch []item) []item {
	r.mu.Lock()
	defer r.mu.Unlock()
	cost := 0
	for c, q := range r.queue {
		n := 0
		for ; n < len(q) && len(batch) < maxBatch; n++ {
			cost += batchCost(q[n].event)
			if cost > maxBatchBytes && len(batch) > 0 {
				break
			}
			batch = append(batch, q[n])
		}
		r.queue[c] = rest(q, n)
		if n < len(q) {
			break // the batch is full
		}
	}
	return batch
}

// batchCost is at least what e costs a store transaction: fixedCost and
// its texts as appendStored quotes them.
func batchCost(e Event) int {
	n := fixedCost
	for _, s := range [...]string{string(e.Kind), e.User, e.Connector, e.Tool, e.Decision, e.Outcome, e.ArgsHash, e.Detail} {
		n += quotedBound(s)
	}
	return n
}

// rest is q without its first n items. An emptied queue starts over at
// the front of its array, or lets a large one go, which only a backlog
// grew: a buffer costs memory while it is used.
func rest(q []item, n int) []item {
	switch {
	case n < len(q):
		clear(q[:n]) // the events' strings, for the collector
		return q[n:]
	case cap(q) > maxBatch:
		return nil
	}
	clear(q)
	return q[:0]
}

// drain writes everything queued.
func (r *ring) drain(batch []item) {
	for {
		batch = r.take(batch[:0])
		if len(batch) == 0 {
			return
		}
		r.write(batch)
	}
}

// write keeps batch, counting its events as dropped if the keeper fails,
// and trims the classes once trimAfter events went in since the last
// trim.
func (r *ring) write(batch []item) {
	limit := int(r.max.Load())
	if err := r.keep.write(batch, limit); err != nil {
		r.drops.Add(uint64(len(batch)))
		r.failed(err, len(batch))
		return
	}
	r.written += len(batch)
	if r.written >= trimAfter(limit) {
		r.trim()
	}
}

// trimAfter is how many events a ring writes between two trims when it
// keeps limit of each class: an eighth of it, so that a keeper that does
// not trim as it writes (a Table, which several instances fill) holds at
// most about an eighth more than its size per writer, and trims seldom.
func trimAfter(limit int) int { return max(limit/8, 1) }

// trim deletes the events beyond Max in each class.
func (r *ring) trim() {
	r.written = 0
	if err := r.keep.trim(int(r.max.Load())); err != nil {
		r.failed(err, 0)
	}
}

// failed logs a store failure, at most once per errorWarning.
func (r *ring) failed(err error, lost int) {
	now := r.now()
	if !r.lastError.IsZero() && now.Sub(r.lastError) < errorWarning {
		return
	}
	r.lastError = now
	r.logger.Load().Error("writing the audit ring", zap.Int("events_lost", lost), zap.Error(err))
}
