package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// ring is the audit ring of one store: a buffer and the one goroutine
// that writes it, in batches, under a sequence of its own. Every Log on
// the store shares it, so that the old and the new config generation of
// a reload, both writing for a moment, never number two events alike.
type ring struct {
	st     Store
	now    func() time.Time
	max    atomic.Int64
	logger atomic.Pointer[zap.Logger] // of the latest Log, for store failures

	in      chan Event
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}

	drops     atomic.Uint64
	warned    atomic.Int64 // when dropped last warned, in Unix nanoseconds
	lastError time.Time    // when the writer last logged a failure; writer only

	// next is the sequence number of the next event, oldest that of the
	// oldest event kept: the keys in [oldest, next) are the ring, with
	// gaps where events were dropped. Only the writer touches them once
	// it runs.
	next, oldest uint64

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
	r := &ring{st: st, now: now, in: make(chan Event, buffer), flushes: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	r.max.Store(int64(size))
	r.logger.Store(logger)
	keys, err := st.List(context.Background(), Prefix)
	if err != nil {
		return nil, fmt.Errorf("audit: reading the ring's last sequence number: %w", err)
	}
	r.oldest, r.next = span(keys)
	go r.run()
	return r, nil
}

// span returns the sequence numbers of the oldest event in keys and of the
// one after the newest: 1 and 1 for an empty ring.
func span(keys []string) (oldest, next uint64) {
	oldest, next = 0, 1
	for _, k := range keys {
		n, ok := sequence(k)
		if !ok {
			continue
		}
		if oldest == 0 || n < oldest {
			oldest = n
		}
		next = max(next, n+1)
	}
	return max(oldest, 1), next
}

// key is where event n lives: zero-padded, so that keys sort as numbers.
func key(n uint64) string { return fmt.Sprintf("%s%020d", Prefix, n) }

// sequence reads the number of an event's key.
func sequence(k string) (uint64, bool) {
	digits, ok := strings.CutPrefix(k, Prefix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// offer queues e for the writer, or reports that the buffer is full.
func (r *ring) offer(e Event) bool {
	select {
	case r.in <- e:
		return true
	default:
		return false
	}
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
	r.trim() // a ring that a larger Max filled
	batch := make([]Event, 0, maxBatch)
	for {
		select {
		case e := <-r.in:
			r.write(r.take(append(batch[:0], e)))
		case ack := <-r.flushes:
			r.drain(batch)
			close(ack)
		case <-r.stop:
			r.drain(batch)
			return
		}
	}
}

// take adds to batch what is queued, up to maxBatch.
func (r *ring) take(batch []Event) []Event {
	for len(batch) < maxBatch {
		select {
		case e := <-r.in:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// drain writes everything queued.
func (r *ring) drain(batch []Event) {
	for {
		batch = r.take(batch[:0])
		if len(batch) == 0 {
			return
		}
		r.write(batch)
	}
}

// write stores batch under the next sequence numbers and deletes the
// events beyond Max, in one transaction where the store allows.
func (r *ring) write(batch []Event) {
	writes := make([]store.Write, 0, len(batch))
	for _, e := range batch {
		v, err := json.Marshal(e)
		if err != nil {
			continue // an Event always encodes
		}
		writes = append(writes, store.Write{Key: key(r.next), Value: v})
		r.next++
	}
	oldest := r.oldest
	writes = r.expire(writes)
	if err := r.apply(writes); err != nil {
		r.oldest = oldest // the deletes did not happen either
		r.drops.Add(uint64(len(batch)))
		r.failed(err, len(batch))
	}
}

// trim deletes the events beyond Max.
func (r *ring) trim() {
	if writes := r.expire(nil); len(writes) > 0 {
		if err := r.apply(writes); err != nil {
			r.failed(err, 0)
		}
	}
}

// expire adds to writes the deletes that bring the ring back to Max
// events, and moves oldest past them.
func (r *ring) expire(writes []store.Write) []store.Write {
	limit := uint64(r.max.Load())
	for r.next-r.oldest > limit {
		writes = append(writes, store.Write{Key: key(r.oldest), Delete: true})
		r.oldest++
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
