package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// newLog opens a Log and closes it when the test ends.
func newLog(t *testing.T, opts Options) *Log {
	t.Helper()
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// openBadger opens a Badger store in dir.
func openBadger(t *testing.T, dir string) *store.Badger {
	t.Helper()
	b, err := store.OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// closeAll closes l, then its store b, as mcpgate does when it stops.
func closeAll(t *testing.T, l *Log, b *store.Badger) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// query runs a Query that must succeed.
func query(t *testing.T, l *Log, f Filter) []Event {
	t.Helper()
	events, err := l.Query(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// details returns the Detail of each event.
func details(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Detail
	}
	return out
}

// pagesOf returns the pages of the ring in st by class, each as the
// numbers of the events it holds, oldest first.
func pagesOf(t *testing.T, st store.Store) map[class][][]uint64 {
	t.Helper()
	keys, err := st.List(context.Background(), Prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[class][][]uint64{}
	for _, k := range keys {
		c, p, ok := parseKey(k)
		if !ok {
			t.Fatalf("a key that is not a page's: %q", k)
		}
		v, err := st.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		var numbers []uint64
		for _, e := range decodePage(nil, c, p, v) {
			numbers = append(numbers, e.seq)
		}
		if len(numbers) != p.n || numbers[len(numbers)-1] != p.last {
			t.Errorf("page %q holds events %v", k, numbers)
		}
		out[c] = append(out[c], numbers)
	}
	return out
}

// sequences returns the numbers of the events the ring holds in st, of
// every class, in order.
func sequences(t *testing.T, st store.Store) []uint64 {
	t.Helper()
	var out []uint64
	for _, pages := range pagesOf(t, st) {
		for _, p := range pages {
			out = append(out, p...)
		}
	}
	slices.Sort(out)
	return out
}

// wantKept checks that the ring in st holds the events numbered want,
// the newest limit of each class, and keeps no page it could do
// without: a class's oldest page goes once the newer ones hold limit
// events, so that a class holds at most a batch more than limit.
func wantKept(t *testing.T, st store.Store, limit int, want []uint64) {
	t.Helper()
	held := sequences(t, st)
	for _, n := range want {
		if !slices.Contains(held, n) {
			t.Errorf("event %d is gone; the store holds %v", n, held)
		}
	}
	if len(held) > 0 && held[len(held)-1] != slices.Max(want) {
		t.Errorf("the store holds %v, newer than %v", held, want)
	}
	for c, pages := range pagesOf(t, st) {
		total := 0
		for _, p := range pages {
			total += len(p)
		}
		if len(pages) > 1 && total-len(pages[0]) >= limit {
			t.Errorf("class %s keeps the page %v that its %d newer events do without", c, pages[0], total-len(pages[0]))
		}
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// TestRingBound records 12 events into a ring of 5: Query answers the 5
// newest only, and the store keeps no page that they do without.
func TestRingBound(t *testing.T) {
	b := openBadger(t, t.TempDir())
	defer b.Close()
	l := newLog(t, Options{Store: b, Max: 5})
	for i := 1; i <= 12; i++ {
		l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: fmt.Sprint("event ", i)})
	}
	got := details(query(t, l, Filter{Limit: 100}))
	if want := []string{"event 12", "event 11", "event 10", "event 9", "event 8"}; !slices.Equal(got, want) {
		t.Errorf("Query = %q, want %q", got, want)
	}
	wantKept(t, b, 5, seq(8, 12))
}

// TestQueryFilters checks each filter and the limit.
func TestQueryFilters(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newLog(t, Options{})
	users, conns := []string{"alice", "bob"}, []string{"notes", "team", "git"}
	for i := range 12 {
		l.Record(Event{Time: start.Add(time.Duration(i) * time.Minute), Kind: KindToolCall,
			User: users[i%2], Connector: conns[i%3], Detail: fmt.Sprint(i)})
	}
	l.Record(Event{Time: start.Add(12 * time.Minute), Kind: KindDisconnect, User: "alice", Connector: "notes", Detail: "12"})
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{"12", "11", "10", "9", "8", "7", "6", "5", "4", "3", "2", "1", "0"}},
		{"limit", Filter{Limit: 3}, []string{"12", "11", "10"}},
		{"since", Filter{Since: start.Add(10 * time.Minute)}, []string{"12", "11", "10"}},
		{"user", Filter{User: "bob"}, []string{"11", "9", "7", "5", "3", "1"}},
		{"connector", Filter{Connector: "team"}, []string{"10", "7", "4", "1"}},
		{"user and connector", Filter{User: "alice", Connector: "notes"}, []string{"12", "6", "0"}},
		{"kind", Filter{Kind: KindDisconnect}, []string{"12"}},
		{"everything", Filter{Since: start.Add(5 * time.Minute), User: "bob", Connector: "team", Limit: 1}, []string{"7"}},
		{"nothing", Filter{User: "carol"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := details(query(t, l, tc.f)); !slices.Equal(got, tc.want) {
				t.Errorf("Query(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		})
	}
	// The limit is at most the ring's size.
	small := newLog(t, Options{Max: 2})
	for range 4 {
		small.Record(Event{Kind: KindToolCall})
	}
	if got := query(t, small, Filter{Limit: 10}); len(got) != 2 {
		t.Errorf("a ring of 2 answered %d events", len(got))
	}
}

// TestSequenceRecovery closes and reopens a real Badger between two Logs:
// the second goes on numbering after the first.
func TestSequenceRecovery(t *testing.T) {
	dir := t.TempDir()
	b := openBadger(t, dir)
	l, err := New(Options{Store: b})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		l.Record(Event{Kind: KindToolCall, Detail: fmt.Sprint(i)})
	}
	closeAll(t, l, b)

	b = openBadger(t, dir)
	defer b.Close()
	l = newLog(t, Options{Store: b, Max: 4})
	for i := 4; i <= 5; i++ {
		l.Record(Event{Kind: KindToolCall, Detail: fmt.Sprint(i)})
	}
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"5", "4", "3", "2"}) {
		t.Errorf("after reopening, Query = %q", got)
	}
	wantKept(t, b, 4, seq(2, 5))
}

// TestSharedRing runs two Logs on one store at once, as the old and the
// new config generation do during a reload: they share one sequence, so
// neither overwrites the other's events, and one closing leaves the other
// working.
func TestSharedRing(t *testing.T) {
	st := store.NewMemory()
	old, fresh := newLog(t, Options{Store: st}), newLog(t, Options{Store: st})
	for i := range 10 {
		old.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: fmt.Sprint("old ", i)})
		fresh.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: fmt.Sprint("new ", i)})
	}
	old.Close()
	fresh.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "after"})
	got := query(t, fresh, Filter{})
	if len(got) != 21 || got[0].Detail != "after" {
		t.Fatalf("Query = %q", details(got))
	}
	if keys := sequences(t, st); !slices.Equal(keys, seq(1, 21)) {
		t.Errorf("the store holds %v", keys)
	}
	if _, err := old.Query(context.Background(), Filter{}); err == nil {
		t.Error("a closed Log answered a query")
	}
}

// TestConcurrent records and queries from many goroutines (run with
// -race): every event lands once, under its own key.
func TestConcurrent(t *testing.T) {
	b := openBadger(t, t.TempDir())
	defer b.Close()
	l := newLog(t, Options{Store: b, Buffer: 2000})
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, User: fmt.Sprint("user", w), Detail: fmt.Sprint(w, "/", i)})
				if i%25 == 0 {
					if _, err := l.Query(context.Background(), Filter{User: fmt.Sprint("user", w)}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	got := query(t, l, Filter{Limit: writers * each})
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.Detail] = true
	}
	if len(got) != writers*each || len(seen) != writers*each || l.Dropped() != 0 {
		t.Errorf("%d events, %d distinct, %d dropped; want %d", len(got), len(seen), l.Dropped(), writers*each)
	}
	if keys := sequences(t, b); !slices.Equal(keys, seq(1, writers*each)) {
		t.Errorf("the store holds %d keys", len(keys))
	}
}

// blockingStore is a store whose batches wait until release is closed.
type blockingStore struct {
	*store.Memory
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingStore) Batch(ctx context.Context, writes []store.Write) error {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Memory.Batch(ctx, writes)
}

// TestDrops blocks the writer: the events that find the buffer full are
// logged but dropped from the ring, counted, and warned about at most once
// a minute.
func TestDrops(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	now := time.Unix(1_700_000_000, 0)
	var clock sync.Mutex
	st := &blockingStore{Memory: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	l := newLog(t, Options{Logger: zap.New(core), Store: st, Buffer: 4, Now: func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return now
	}})
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "first"})
	<-st.entered // the writer holds "first" and waits in the store
	for i := range 10 {
		l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: fmt.Sprint(i)})
	}
	if n := l.Dropped(); n != 6 {
		t.Errorf("Dropped = %d, want 6 (4 of the 10 fit in the buffer)", n)
	}
	warnings := func() int { return logs.FilterLevelExact(zap.WarnLevel).Len() }
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
	clock.Lock()
	now = now.Add(dropWarning)
	clock.Unlock()
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "a minute later"})
	if n, w := l.Dropped(), warnings(); n != 7 || w != 2 {
		t.Errorf("a minute later: %d dropped, %d warnings; want 7 and 2", n, w)
	}
	if n := logs.FilterMessage("tool call").Len(); n != 12 {
		t.Errorf("%d tool call lines, want all 12", n)
	}
	close(st.release)
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"3", "2", "1", "0", "first"}) {
		t.Errorf("the ring holds %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// TestArgumentsCanary records a tool call whose arguments hold a canary:
// the canary is found neither in Query's answer, nor in the log lines,
// nor anywhere in the Badger files once closed. The arguments' hash is.
func TestArgumentsCanary(t *testing.T) {
	const canary = "canary-7f3a9c1e-do-not-store"
	var lines syncBuffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&lines), zap.DebugLevel))
	dir := t.TempDir()
	b := openBadger(t, dir)
	key := []byte("a 32-byte key for the args hash")
	l, err := New(Options{Logger: logger, Store: b, ArgsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	args := []byte(`{"query":"` + canary + `","limit":3}`)
	hash := l.HashArgs(args)
	if hash == "" || hash != ArgsHash(key, args) || strings.Contains(hash, canary) {
		t.Fatalf("HashArgs = %q", hash)
	}
	l.Record(Event{Kind: KindToolCall, User: "alice", Connector: "notes", Tool: "search",
		Decision: DecisionAllow, Outcome: OutcomeOK, Duration: 1500 * time.Microsecond, ArgsHash: hash})
	got := query(t, l, Filter{})
	answer, _ := json.Marshal(got)
	if len(got) != 1 || got[0].ArgsHash != hash || bytes.Contains(answer, []byte(canary)) {
		t.Errorf("Query = %s", answer)
	}
	if !bytes.Contains(lines.Bytes(), []byte(hash)) || bytes.Contains(lines.Bytes(), []byte(canary)) {
		t.Errorf("the log lines: %s", lines.Bytes())
	}
	closeAll(t, l, b)
	found := false
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if bytes.Contains(data, []byte(canary)) {
			t.Errorf("%s holds the canary", path)
		}
		found = found || bytes.Contains(data, []byte(hash))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Error("no Badger file holds the event: the search for the canary proves nothing")
	}
}

// TestArgsHash checks that the hash depends on the key and the arguments,
// and that no key leaves no trace.
func TestArgsHash(t *testing.T) {
	a, b := []byte("key a"), []byte("key b")
	args := []byte(`{"x":1}`)
	switch {
	case ArgsHash(nil, args) != "":
		t.Error("a hash without a key")
	case ArgsHash(a, args) != ArgsHash(a, bytes.Clone(args)):
		t.Error("equal arguments hash differently")
	case ArgsHash(a, args) == ArgsHash(b, args):
		t.Error("the key does not change the hash")
	case ArgsHash(a, args) == ArgsHash(a, []byte(`{"x":2}`)):
		t.Error("the arguments do not change the hash")
	case len(ArgsHash(a, args)) != 32:
		t.Errorf("hash %q is not 128 bits in hex", ArgsHash(a, args))
	}
}

// TestEventJSON checks the encoding: duration_ms in milliseconds, empty
// fields left out, and a round trip.
func TestEventJSON(t *testing.T) {
	e := Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: KindToolCall, User: "alice",
		Outcome: OutcomeOK, Duration: 2500 * time.Microsecond}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05Z","kind":"tool_call","user":"alice","outcome":"ok","duration_ms":2.5}`
	if string(raw) != want {
		t.Errorf("encoded %s, want %s", raw, want)
	}
	var back Event
	if err := json.Unmarshal(raw, &back); err != nil || back != e {
		t.Errorf("decoded %+v, %v", back, err)
	}
}

// TestRecordLine checks the logged line: one per event, with its fields,
// and Detail cut to its bound.
func TestRecordLine(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l := newLog(t, Options{Logger: zap.New(core).Named("mcpgate.audit")})
	l.Record(Event{Kind: KindRefreshFailure, User: "bob", Connector: "notes", Outcome: "invalid_grant",
		Detail: strings.Repeat("é", 200)})
	all := logs.All()
	if len(all) != 1 {
		t.Fatalf("%d lines", len(all))
	}
	line := all[0]
	fields := line.ContextMap()
	if line.LoggerName != "mcpgate.audit" || line.Message != "token refresh failed" || fields["kind"] != "refresh_failure" ||
		fields["user"] != "bob" || fields["connector"] != "notes" || fields["outcome"] != "invalid_grant" {
		t.Errorf("line %q %q %v", line.LoggerName, line.Message, fields)
	}
	detail, _ := fields["detail"].(string)
	if len(detail) > maxField || !strings.HasSuffix(detail, "…") || !strings.HasPrefix(detail, "éé") {
		t.Errorf("detail of %d bytes: %q", len(detail), detail)
	}
	if _, ok := fields["tool"]; ok {
		t.Error("an empty field was logged")
	}
}
