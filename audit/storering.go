package audit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/s2"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Store is where a ring is kept: a store that writes a batch in one
// transaction. Its dynamic type must be comparable (a pointer, as every
// store in this module is): Logs on one store find its ring by it.
type Store interface {
	store.Store
	store.Batcher
}

// storeRing keeps the events in a Store, a ring of pages per class. A
// page is the events of one class that one batch wrote, under one key:
// a key per event cost Badger an entry in its log, its memtable and every
// table it is compacted into, and its delete as many again, which under
// thousands of calls a second was a tenth of the gateway's CPU.
type storeRing struct {
	st Store
	// kept are the pages each class keeps, oldest first; only the writer
	// touches them once it runs.
	kept [numClasses][]page
}

// page is a run of one class's events stored under one key: the number
// of its newest event and how many it holds.
type page struct {
	last uint64
	n    int
	// bare is true for an event that an older version kept under a key
	// of its own, its number alone: a page of one.
	bare bool
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

// load reads where the rings in st stand, from their keys alone: the
// pages each class keeps, and the number of the next event, one past the
// newest. Events that an older version kept in one ring for all classes
// move into their class's ring first, under their own numbers.
func (s *storeRing) load(ctx context.Context) (uint64, error) {
	keys, err := s.st.List(ctx, Prefix)
	if err != nil {
		return 0, fmt.Errorf("audit: reading the ring's last sequence number: %w", err)
	}
	next := uint64(1)
	var legacy []uint64
	for _, k := range keys {
		if c, p, ok := parseKey(k); ok {
			s.kept[c] = append(s.kept[c], p)
			next = max(next, p.last+1)
		} else if n, ok := legacySequence(k); ok {
			legacy = append(legacy, n)
			next = max(next, n+1)
		}
	}
	if err := s.migrate(ctx, legacy); err != nil {
		return 0, err
	}
	for c := range s.kept {
		slices.SortFunc(s.kept[c], func(a, b page) int { return cmp.Compare(a.last, b.last) })
	}
	return next, nil
}

// migrate moves the events of the one ring of older versions, numbered
// legacy, into the rings of their classes, in batches, each a page of
// its own. An event that cannot be decoded goes to the calls, as it is:
// Query skips it, as it always did, but nothing is lost.
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
		p := page{last: n, n: 1}
		writes = append(writes, store.Write{Key: pageKey(c, p), Value: v}, store.Write{Key: old, Delete: true})
		s.kept[c] = append(s.kept[c], p)
	}
	return writes, nil
}

// pageKey is where page p of class c lives: its newest event's number,
// zero-padded so that keys sort as numbers, a dash and its count; or the
// number alone, for an older version's event.
func pageKey(c class, p page) string {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], p.last, 10)
	name := c.String()
	// Built on the stack: only the string is allocated.
	var room [80]byte
	b := append(append(append(room[:0], Prefix...), name...), '/')
	b = append(b, "00000000000000000000"[len(d):]...)
	b = append(b, d...)
	if !p.bare {
		b = strconv.AppendInt(append(b, '-'), int64(p.n), 10)
	}
	return string(b)
}

// parseKey reads the class and the page of a key of pageKey's, or of an
// older version's, which kept an event under its number alone: a page of
// one.
func parseKey(k string) (class, page, bool) {
	rest, ok := strings.CutPrefix(k, Prefix)
	name, digits, found := strings.Cut(rest, "/")
	c, known := classNamed(name)
	digits, count, paged := strings.Cut(digits, "-")
	p := page{n: 1, bare: !paged}
	last, number := parseSequence(digits)
	p.last = last
	if paged {
		n, err := strconv.Atoi(count)
		p.n = n
		number = number && err == nil && n > 0 && strconv.Itoa(n) == count
	}
	return c, p, ok && found && known && number
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

// numbered is an event with its number and class, as a page holds it.
type numbered struct {
	seq   uint64
	class class
	event Event
}

// appendPage appends the line of each of items, whose class is c, to b:
// its number, a space and its JSON. JSON holds no raw newline.
func appendPage(b []byte, items []item) []byte {
	for _, it := range items {
		b = strconv.AppendUint(b, it.seq, 10)
		b = appendStored(append(b, ' '), it.event)
		b = append(b, '\n')
	}
	return b
}

// compressedPage marks a page whose lines are compressed with S2 (the
// successor of Snappy, which Badger links already). The events of one
// batch repeat their users, connectors, tools and field names: a page of
// tool calls shrinks about fivefold (their argument hashes do not), and
// so does what Badger writes to its log, memtable and tables and
// compacts, which was most of its work.
const compressedPage = 's'

// maxPageBytes bounds what a compressed page may decode to, so that a
// damaged value cannot ask for gigabytes: a page holds at most
// maxBatchBytes of events.
const maxPageBytes = 4 * maxBatchBytes

// compressPage returns the value of a page of lines: compressed behind
// compressedPage, or lines as they are (a copy) where S2 does not shrink
// them, so that a page is never larger than its lines and the
// transaction's bound (batchCost) holds.
func compressPage(lines []byte) []byte {
	v := make([]byte, 1+s2.MaxEncodedLen(len(lines)))
	v[0] = compressedPage
	if n := len(s2.Encode(v[1:], lines)); n < len(lines)-1 {
		return v[: 1+n : 1+n]
	}
	return slices.Clone(lines)
}

// decodePage appends the events of the page of class c under whose key
// is p, stored as v, to out, oldest first: lines, compressed or not. A
// value that is one JSON object is an older version's event, numbered by
// its key. A compressed value that would decode past maxPageBytes or
// does not decode is skipped whole. A line that
// cannot be decoded is skipped, as Query always skipped such an event.
func decodePage(out []numbered, c class, p page, v []byte) []numbered {
	switch {
	case len(v) > 0 && v[0] == '{':
		if e, err := decode(v); err == nil {
			out = append(out, numbered{p.last, c, e})
		}
		return out
	case len(v) > 0 && v[0] == compressedPage:
		n, err := s2.DecodedLen(v[1:])
		if err != nil || n > maxPageBytes {
			return out
		}
		if v, err = s2.Decode(nil, v[1:]); err != nil {
			return out
		}
		return decodeLines(out, c, v)
	}
	return decodeLines(out, c, v)
}

// decodeLines appends the events of a page's lines v, of class c, to out.
func decodeLines(out []numbered, c class, v []byte) []numbered {
	for line := range bytes.Lines(v) {
		digits, doc, _ := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte(" "))
		n, err := strconv.ParseUint(string(digits), 10, 64)
		if err != nil {
			continue
		}
		if e, err := decode(doc); err == nil {
			out = append(out, numbered{n, c, e})
		}
	}
	return out
}

// listed is a page found by its key.
type listed struct {
	key   string
	class class
	page
}

// query returns the events of the rings that f selects, newest first,
// at most limit of each class: the rings delete a page only once all of
// its events are beyond limit, so a class may hold up to a batch more.
// Pages are read newest first, by their newest events; since the pages
// of one batch interleave their numbers, an event is answered only once
// no page left to read can hold a newer one. The scan stops at the first
// event older than f.Since: events are kept in the order they were
// recorded.
func (s *storeRing) query(ctx context.Context, f Filter, limit int) ([]Event, error) {
	pages, err := newestFirst(ctx, s.st, f.prefix())
	if err != nil {
		return nil, err
	}
	out := []Event{}
	var waiting []numbered // read, not yet answered; newest first
	var answered [numClasses]int
	// answer takes the waiting events newer than above, newest first,
	// and reports whether the query is done.
	answer := func(above uint64) bool {
		i := 0
		defer func() { waiting = waiting[i:] }()
		for ; i < len(waiting) && waiting[i].seq > above; i++ {
			w := waiting[i]
			if answered[w.class] == limit {
				continue // beyond the ring's size, in a page not yet deleted
			}
			answered[w.class]++
			switch {
			case !f.Since.IsZero() && w.event.Time.Before(f.Since):
				return true
			case f.matches(w.event):
				out = append(out, w.event)
				if len(out) == f.Limit {
					return true
				}
			}
		}
		return false
	}
	for _, p := range pages {
		if answer(p.last) {
			return out, nil
		}
		v, err := s.st.Get(ctx, p.key)
		if errors.Is(err, store.ErrNotFound) {
			continue // trimmed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("audit: reading the ring: %w", err)
		}
		waiting = decodePage(waiting, p.class, p.page, v)
		slices.SortFunc(waiting, func(a, b numbered) int { return cmp.Compare(b.seq, a.seq) })
	}
	answer(0)
	return out, nil
}

// prefix is where the events f selects may be: the folder of its kind's
// class, when every event of the kind is in one (admin changes, drift,
// revocations, ...), so that looking for them does not read every tool
// call; the whole ring for the kinds whose class depends on the event
// (an attempt's or not), and for no kind.
func (f Filter) prefix() string {
	if f.Kind == "" {
		return Prefix
	}
	// An attempt and a success of the kind: one class for both, or two.
	c := classOf(Event{Kind: f.Kind, Decision: DecisionDeny, Outcome: "failed"})
	if c != classOf(Event{Kind: f.Kind, Decision: DecisionAllow, Outcome: OutcomeOK}) {
		return Prefix
	}
	return Prefix + c.String() + "/"
}

// newestFirst returns the pages under prefix in st, newest first: by the
// numbers of their newest events, which are one sequence across classes.
func newestFirst(ctx context.Context, st Store, prefix string) ([]listed, error) {
	keys, err := st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("audit: listing the ring: %w", err)
	}
	pages := make([]listed, 0, len(keys))
	for _, k := range keys {
		if c, p, ok := parseKey(k); ok {
			pages = append(pages, listed{k, c, p})
		}
	}
	slices.SortFunc(pages, func(a, b listed) int { return cmp.Compare(b.last, a.last) })
	return pages, nil
}

// write stores batch, a page per class, and deletes the pages beyond
// limit in each class, in one transaction. A class with more than limit
// events in the batch keeps its newest limit. kept changes only once the
// store has taken it: a failed batch leaves a gap in the numbers, and
// the pages it would have expired are still kept.
func (s *storeRing) write(batch []item, limit int) error {
	writes := make([]store.Write, 0, numClasses)
	kept := s.kept
	// One buffer for the lines of each page in turn, which compressPage
	// copies.
	buf := make([]byte, 0, 256*len(batch))
	items := make([]item, 0, len(batch))
	for c := range class(numClasses) {
		items = items[:0]
		for _, it := range batch {
			if it.class == c {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			continue
		}
		items = items[max(len(items)-limit, 0):]
		buf = appendPage(buf[:0], items)
		p := page{last: items[len(items)-1].seq, n: len(items)}
		writes = append(writes, store.Write{Key: pageKey(c, p), Value: compressPage(buf)})
		kept[c] = append(kept[c], p)
	}
	writes = expire(&kept, limit, writes)
	if err := s.apply(writes); err != nil {
		return err
	}
	s.kept = kept
	return nil
}

// trim deletes the pages beyond max in each class.
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

// expire adds to writes the deletes of the oldest pages of each class of
// kept that the newer ones hold limit events without, and takes them out
// of kept. (Appending to a copy of s.kept and cutting its head leave
// s.kept itself as it was.)
func expire(kept *[numClasses][]page, limit int, writes []store.Write) []store.Write {
	for c := range kept {
		total := 0
		for _, p := range kept[c] {
			total += p.n
		}
		for len(kept[c]) > 0 && total-kept[c][0].n >= limit {
			writes = append(writes, store.Write{Key: pageKey(class(c), kept[c][0]), Delete: true})
			total -= kept[c][0].n
			kept[c] = kept[c][1:]
		}
	}
	return writes
}

// apply makes writes in one batch.
func (s *storeRing) apply(writes []store.Write) error {
	return s.st.Batch(context.Background(), writes)
}
