package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Store is where a ring is kept: a store that writes a batch in one
// transaction. Its dynamic type must be comparable (a pointer, as every
// store in this module is): Logs on one store find its ring by it.
type Store interface {
	store.Store
	store.Batcher
}

// storeRing keeps the events in a Store, a ring of keys per class.
type storeRing struct {
	st Store
	// kept are the numbers of the events each class keeps, oldest first;
	// only the writer touches them once it runs.
	kept [numClasses][]uint64
}

// openStoreRing reads where the rings in st stand, returning them and
// the number of the next event.
func openStoreRing(st Store) (keeper, uint64, error) {
	s := &storeRing{st: st}
	next, err := s.load(context.Background())
	if err != nil {
		return nil, 0, err
	}
	return s, next, nil
}

// load reads where the rings in st stand: the events each class keeps,
// and the number of the next event, one past the newest. Events that an
// older version kept in one ring for all classes move into their class's
// ring first, under their own numbers.
func (s *storeRing) load(ctx context.Context) (uint64, error) {
	keys, err := s.st.List(ctx, Prefix)
	if err != nil {
		return 0, fmt.Errorf("audit: reading the ring's last sequence number: %w", err)
	}
	next := uint64(1)
	var legacy []uint64
	for _, k := range keys {
		if c, n, ok := parseKey(k); ok {
			s.kept[c] = append(s.kept[c], n)
			next = max(next, n+1)
		} else if n, ok := legacySequence(k); ok {
			legacy = append(legacy, n)
			next = max(next, n+1)
		}
	}
	if err := s.migrate(ctx, legacy); err != nil {
		return 0, err
	}
	for c := range s.kept {
		slices.Sort(s.kept[c])
	}
	return next, nil
}

// migrate moves the events of the one ring of older versions, numbered
// legacy, into the rings of their classes, in batches. An event that
// cannot be decoded goes to the calls, as it is: Query skips it, as it
// always did, but nothing is lost.
func (s *storeRing) migrate(ctx context.Context, legacy []uint64) error {
	for chunk := range slices.Chunk(legacy, maxBatch/2) {
		writes, err := s.moves(ctx, chunk)
		if err != nil {
			return err
		}
		for len(writes) > 0 {
			n := fitting(writes)
			if err := s.st.Batch(ctx, writes[:n]); err != nil {
				return fmt.Errorf("audit: moving the older ring's events into their classes: %w", err)
			}
			writes = writes[n:]
		}
	}
	return nil
}

// fitting is how many of moves, pairs of a write and its delete, go in
// one transaction: pairs up to maxBatchBytes as Badger counts them, and
// at least one. An event of an older version may be kilobytes.
func fitting(moves []store.Write) int {
	cost := 0
	for i := 0; i < len(moves); i += 2 {
		for _, w := range moves[i:min(i+2, len(moves))] {
			cost += len(w.Key) + len(w.Value) + badgerEntry
		}
		if cost > maxBatchBytes && i > 0 {
			return i
		}
	}
	return len(moves)
}

// moves returns the writes that move the older ring's events numbered
// chunk into their classes, and adds them to kept.
func (s *storeRing) moves(ctx context.Context, chunk []uint64) ([]store.Write, error) {
	writes := make([]store.Write, 0, 2*len(chunk))
	for _, n := range chunk {
		old := legacyKey(n)
		v, err := s.st.Get(ctx, old)
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
		s.kept[c] = append(s.kept[c], n)
	}
	return writes, nil
}

// key is where event n of class c lives: zero-padded, so that keys sort
// as numbers.
func key(c class, n uint64) string {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], n, 10)
	name := c.String()
	// Built on the stack: only the string is allocated.
	var room [64]byte
	b := append(append(append(room[:0], Prefix...), name...), '/')
	b = append(b, "00000000000000000000"[len(d):]...)
	return string(append(b, d...))
}

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

// read returns the event under k; ok is false when it is gone (trimmed
// meanwhile) or cannot be decoded.
func (s *storeRing) read(ctx context.Context, k string) (Event, bool, error) {
	v, err := s.st.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("audit: reading the ring: %w", err)
	}
	e, err := decode(v)
	return e, err == nil, nil
}

// query returns the events of the rings that f selects, newest first.
// Events are kept in the order they were recorded, and the scan stops at
// the first one older than f.Since.
func (s *storeRing) query(ctx context.Context, f Filter) ([]Event, error) {
	keys, err := newestFirst(ctx, s.st, f.prefix())
	if err != nil {
		return nil, err
	}
	out := []Event{}
	for _, k := range keys {
		if len(out) == f.Limit {
			break
		}
		e, ok, err := s.read(ctx, k)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			continue
		case !f.Since.IsZero() && e.Time.Before(f.Since):
			return out, nil
		case f.matches(e):
			out = append(out, e)
		}
	}
	return out, nil
}

// prefix is where the events f selects may be: admin changes have a
// folder of their own, so that looking for them does not read every tool
// call; other kinds may be in two classes (an attempt's or not).
func (f Filter) prefix() string {
	if f.Kind == KindAdminChange {
		return Prefix + classAdmin.String() + "/"
	}
	return Prefix
}

// newestFirst returns the keys of the events under prefix in st, newest
// first: by their numbers, which are one sequence across classes.
func newestFirst(ctx context.Context, st Store, prefix string) ([]string, error) {
	keys, err := st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("audit: listing the ring: %w", err)
	}
	type numbered struct {
		key string
		seq uint64
	}
	events := make([]numbered, 0, len(keys))
	for _, k := range keys {
		if _, n, ok := parseKey(k); ok {
			events = append(events, numbered{k, n})
		}
	}
	slices.SortFunc(events, func(a, b numbered) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.key
	}
	return out, nil
}

// write stores batch and deletes the events beyond max in each class, in
// one transaction. kept changes only once the store has taken it: a
// failed batch leaves a gap in the numbers, and the events it would have
// expired are still kept.
func (s *storeRing) write(batch []item, limit int) error {
	writes := make([]store.Write, 0, len(batch))
	kept := s.kept
	// One buffer for the batch's values, each a slice of it that later
	// ones never overwrite.
	buf := make([]byte, 0, 256*len(batch))
	for _, it := range batch {
		start := len(buf)
		buf = appendStored(buf, it.event)
		v := buf[start:len(buf):len(buf)]
		writes = append(writes, store.Write{Key: key(it.class, it.seq), Value: v})
		kept[it.class] = append(kept[it.class], it.seq)
	}
	writes = expire(&kept, limit, writes)
	if err := s.apply(writes); err != nil {
		return err
	}
	s.kept = kept
	return nil
}

// trim deletes the events beyond max in each class.
func (s *storeRing) trim(limit int) error {
	kept := s.kept
	writes := expire(&kept, limit, nil)
	if len(writes) == 0 {
		return nil
	}
	if err := s.apply(writes); err != nil {
		return err
	}
	s.kept = kept
	return nil
}

// expire adds to writes the deletes that bring each class of kept back to
// limit events, and takes them out of kept. (Appending to a copy of
// s.kept and cutting its head leave s.kept itself as it was.)
func expire(kept *[numClasses][]uint64, limit int, writes []store.Write) []store.Write {
	for c := range kept {
		for len(kept[c]) > limit {
			writes = append(writes, store.Write{Key: key(class(c), kept[c][0]), Delete: true})
			kept[c] = kept[c][1:]
		}
	}
	return writes
}

// apply makes writes in one batch.
func (s *storeRing) apply(writes []store.Write) error {
	return s.st.Batch(context.Background(), writes)
}
