package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// maxBatch bounds the events of one store transaction.
const maxBatch = 256

// errorWarning is how often, at most, a ring logs that the store failed.
const errorWarning = time.Minute

// Store is where a ring is kept: a store that writes a batch in one
// transaction. Its dynamic type must be comparable (a pointer, as every
// store in this module is): Logs on one store find its ring by it.
type Store interface {
	store.Store
	store.Batcher
}

// item is an event queued for the ring, numbered already.
type item struct {
	seq   uint64
	class class
	event Event
}

// ring is the audit ring of one store: a ring per class, a buffer per
// class and the one goroutine that writes them all, in batches, under one
// sequence. Every Log on the store shares it, so that the old and the new
// config generation of a reload, both writing for a moment, never number
// two events alike. A buffer per class keeps a flood of tool calls from
// crowding an admin change out of the buffer as well as out of the ring.
type ring struct {
	st     Store
	now    func() time.Time
	max    atomic.Int64               // events kept per class
	logger atomic.Pointer[zap.Logger] // of the latest Log, for store failures

	// mu orders the numbering and the queueing of events: the events of a
	// class reach the writer in the order of their numbers, and the
	// numbers are the order in which events were recorded, across
	// classes, which is the order Query returns them in.
	mu   sync.Mutex
	next uint64 // the number of the next event; guarded by mu

	in      [numClasses]chan item
	wake    chan struct{} // something is queued
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}

	drops     atomic.Uint64
	warned    atomic.Int64 // when dropped last warned, in Unix nanoseconds
	lastError time.Time    // when the writer last logged a failure; writer only

	// kept are the numbers of the events each class keeps, oldest first;
	// only the writer touches them once it runs.
	kept [numClasses][]uint64

	refs int // Logs using the ring; guarded by rings.mu
}

// rings are the open rings, by store.
var rings = struct {
	mu sync.Mutex
	m  map[Store]*ring
}{m: map[Store]*ring{}}

// acquire returns the ring of st, opening it (and recovering its sequence
// from the store) if no Log uses it.
func acquire(st Store, size, buffer int, logger *zap.Logger, now func() time.Time) (*ring, error) {
	rings.mu.Lock()
	defer rings.mu.Unlock()
	if r := rings.m[st]; r != nil {
		r.max.Store(int64(size))
		r.logger.Store(logger)
		r.refs++
		return r, nil
	}
	r, err := openRing(st, size, buffer, logger, now)
	if err != nil {
		return nil, err
	}
	rings.m[st] = r
	r.refs++
	return r, nil
}

// release drops a Log's use of r; the last one stops the writer, once it
// has written what waits.
func release(r *ring) error {
	rings.mu.Lock()
	r.refs--
	last := r.refs == 0
	if last && rings.m[r.st] == r {
		delete(rings.m, r.st)
	}
	rings.mu.Unlock()
	if last {
		close(r.stop)
		<-r.done
	}
	return nil
}

// openRing reads where the ring in st stands and starts its writer.
func openRing(st Store, size, buffer int, logger *zap.Logger, now func() time.Time) (*ring, error) {
	r := &ring{st: st, now: now, wake: make(chan struct{}, 1), flushes: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	for c := range r.in {
		r.in[c] = make(chan item, buffer)
	}
	r.max.Store(int64(size))
	r.logger.Store(logger)
	if err := r.load(context.Background()); err != nil {
		return nil, err
	}
	go r.run()
	return r, nil
}

// load reads where the rings in st stand: the events each class keeps,
// and the number of the next event, one past the newest. Events that an
// older version kept in one ring for all classes move into their class's
// ring first, under their own numbers.
func (r *ring) load(ctx context.Context) error {
	keys, err := r.st.List(ctx, Prefix)
	if err != nil {
		return fmt.Errorf("audit: reading the ring's last sequence number: %w", err)
	}
	r.next = 1
	var legacy []uint64
	for _, k := range keys {
		if c, n, ok := parseKey(k); ok {
			r.kept[c] = append(r.kept[c], n)
			r.next = max(r.next, n+1)
		} else if n, ok := legacySequence(k); ok {
			legacy = append(legacy, n)
			r.next = max(r.next, n+1)
		}
	}
	if err := r.migrate(ctx, legacy); err != nil {
		return err
	}
	for c := range r.kept {
		slices.Sort(r.kept[c])
	}
	return nil
}

// migrate moves the events of the one ring of older versions, numbered
// legacy, into the rings of their classes, in batches. An event that
// cannot be decoded goes to the calls, as it is: Query skips it, as it
// always did, but nothing is lost.
func (r *ring) migrate(ctx context.Context, legacy []uint64) error {
	for chunk := range slices.Chunk(legacy, maxBatch/2) {
		writes, err := r.moves(ctx, chunk)
		if err != nil {
			return err
		}
		if err := r.st.Batch(ctx, writes); err != nil {
			return fmt.Errorf("audit: moving the older ring's events into their classes: %w", err)
		}
	}
	return nil
}

// moves returns the writes that move the older ring's events numbered
// chunk into their classes, and adds them to kept.
func (r *ring) moves(ctx context.Context, chunk []uint64) ([]store.Write, error) {
	writes := make([]store.Write, 0, 2*len(chunk))
	for _, n := range chunk {
		old := legacyKey(n)
		v, err := r.st.Get(ctx, old)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: reading event %d of the older ring: %w", n, err)
		}
		c := classCalls
		if e, err := decode(v); err == nil {
			c = classOf(e)
		}
		writes = append(writes, store.Write{Key: key(c, n), Value: v}, store.Write{Key: old, Delete: true})
		r.kept[c] = append(r.kept[c], n)
	}
	return writes, nil
}

// key is where event n of class c lives: zero-padded, so that keys sort
// as numbers.
func key(c class, n uint64) string { return fmt.Sprintf("%s%s/%020d", Prefix, c, n) }

// parseKey reads the class and the number of an event's key.
func parseKey(k string) (class, uint64, bool) {
	rest, ok := strings.CutPrefix(k, Prefix)
	name, digits, found := strings.Cut(rest, "/")
	c, known := classNamed(name)
	n, number := parseSequence(digits)
	return c, n, ok && found && known && number
}

// legacyKey is where older versions, with one ring for all classes, kept
// event n.
func legacyKey(n uint64) string { return fmt.Sprintf("%s%020d", Prefix, n) }

// legacySequence reads the number of a key of legacyKey's.
func legacySequence(k string) (uint64, bool) {
	digits, ok := strings.CutPrefix(k, Prefix)
	n, number := parseSequence(digits)
	return n, ok && number
}

// parseSequence reads the 20 digits of a sequence number.
func parseSequence(digits string) (uint64, bool) {
	if len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// offer numbers e and queues it for the writer, or reports that the
// buffer of its class is full.
func (r *ring) offer(e Event) bool {
	c := classOf(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case r.in[c] <- item{seq: r.next, class: c, event: e}:
		r.next++
	default:
		return false
	}
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

// read returns the event under k; ok is false when it is gone (trimmed
// meanwhile) or cannot be decoded.
func (r *ring) read(ctx context.Context, k string) (Event, bool, error) {
	v, err := r.st.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("audit: reading the ring: %w", err)
	}
	e, err := decode(v)
	return e, err == nil, nil
}

// run is the writer: it takes what is queued, up to maxBatch events at a
// time, and writes each batch in one store transaction, so that under load
// many events share one disk sync.
func (r *ring) run() {
	defer close(r.done)
	r.trim() // rings that a larger Max filled
	batch := make([]item, 0, maxBatch)
	for {
		select {
		case <-r.wake:
			r.drain(batch)
		case ack := <-r.flushes:
			r.drain(batch)
			close(ack)
		case <-r.stop:
			r.drain(batch)
			return
		}
	}
}

// take adds to batch what is queued, up to maxBatch: the classes in
// order, so that a flood of calls delays the admin and auth events least.
func (r *ring) take(batch []item) []item {
	for _, in := range r.in {
		batch = takeFrom(in, batch)
	}
	return batch
}

// takeFrom adds to batch what in holds, up to maxBatch.
func takeFrom(in chan item, batch []item) []item {
	for len(batch) < maxBatch {
		select {
		case it := <-in:
			batch = append(batch, it)
		default:
			return batch
		}
	}
	return batch
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

// write stores batch and deletes the events beyond Max in each class, in
// one transaction. kept changes only once the store has taken it: a
// failed batch leaves a gap in the numbers, and the events it would have
// expired are still kept.
func (r *ring) write(batch []item) {
	writes := make([]store.Write, 0, len(batch))
	kept := r.kept
	for _, it := range batch {
		v, err := json.Marshal(it.event)
		if err != nil {
			continue // an Event always encodes
		}
		writes = append(writes, store.Write{Key: key(it.class, it.seq), Value: v})
		kept[it.class] = append(kept[it.class], it.seq)
	}
	writes = r.expire(&kept, writes)
	if err := r.apply(writes); err != nil {
		r.drops.Add(uint64(len(batch)))
		r.failed(err, len(batch))
		return
	}
	r.kept = kept
}

// trim deletes the events beyond Max in each class.
func (r *ring) trim() {
	kept := r.kept
	writes := r.expire(&kept, nil)
	if len(writes) == 0 {
		return
	}
	if err := r.apply(writes); err != nil {
		r.failed(err, 0)
		return
	}
	r.kept = kept
}

// expire adds to writes the deletes that bring each class of kept back to
// Max events, and takes them out of kept. (Appending to a copy of r.kept
// and cutting its head leave r.kept itself as it was.)
func (r *ring) expire(kept *[numClasses][]uint64, writes []store.Write) []store.Write {
	limit := int(r.max.Load())
	for c := range kept {
		for len(kept[c]) > limit {
			writes = append(writes, store.Write{Key: key(class(c), kept[c][0]), Delete: true})
			kept[c] = kept[c][1:]
		}
	}
	return writes
}

// apply makes writes in one batch.
func (r *ring) apply(writes []store.Write) error {
	return r.st.Batch(context.Background(), writes)
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
