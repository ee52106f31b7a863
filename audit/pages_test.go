package audit

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestBatchIsPages holds the writer while 300 tool calls and two admin
// changes wait, then lets them go: each batch is one key per class, not
// one per event (a key per event cost Badger an entry in every table it
// passes through), and Query answers every event newest first.
func TestBatchIsPages(t *testing.T) {
	st := &blockingStore{Memory: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	l := newLog(t, Options{Store: st})
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "0"})
	<-st.entered // the writer holds event 0 and waits in the store
	for i := 1; i <= 300; i++ {
		kind := KindToolCall
		if i == 100 || i == 200 {
			kind = KindAdminChange
		}
		l.Record(Event{Kind: kind, Decision: DecisionAllow, Detail: fmt.Sprint(i)})
	}
	close(st.release)
	got := details(query(t, l, Filter{Limit: 1000}))
	var want []string
	for i := 300; i >= 0; i-- {
		want = append(want, fmt.Sprint(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Query = %q", got)
	}
	keys, err := st.List(context.Background(), Prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Event 0 alone, then at most maxBatch events a batch: the calls in
	// two pages and the admin changes in one, or in a page each if the
	// writer took them in two batches.
	if len(keys) > 5 {
		t.Errorf("301 events went under %d keys: %q", len(keys), keys)
	}
	pages := pagesOf(t, st)
	if admin := pages[classAdmin]; len(admin) > 2 {
		t.Errorf("the admin changes of at most two batches are in %d pages: %v", len(admin), admin)
	}
}

// TestOlderEventKeys opens a Log on a store that an older version filled
// with a key per event in the class folders: they read as pages of one,
// Query merges them with the new pages in order, and they go as the ring
// moves past them.
func TestOlderEventKeys(t *testing.T) {
	st := store.NewMemory()
	ctx := context.Background()
	for n := uint64(1); n <= 4; n++ {
		k := fmt.Sprintf("%scalls/%020d", Prefix, n)
		if err := st.Put(ctx, k, []byte(fmt.Sprintf(`{"kind":"tool_call","decision":"allow","detail":"%d"}`, n)), 0); err != nil {
			t.Fatal(err)
		}
	}
	l := newLog(t, Options{Store: st, Max: 3})
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"4", "3", "2"}) {
		t.Errorf("the older events: %q", got)
	}
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "5"})
	if got := details(query(t, l, Filter{})); !slices.Equal(got, []string{"5", "4", "3"}) {
		t.Errorf("after a new event: %q", got)
	}
	wantKept(t, st, 3, seq(3, 5))
}

// TestQueryCutsPages: a ring reopened with a smaller size answers only
// the newest of each class, though a page holds more until the ring
// moves past it.
func TestQueryCutsPages(t *testing.T) {
	st := &blockingStore{Memory: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	l := newLog(t, Options{Store: st, Max: 10})
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "0"})
	<-st.entered
	for i := 1; i <= 6; i++ {
		l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: fmt.Sprint(i)})
	}
	close(st.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	small := newLog(t, Options{Store: st.Memory, Max: 4})
	if got := details(query(t, small, Filter{})); !slices.Equal(got, []string{"6", "5", "4", "3"}) {
		t.Errorf("a ring of 4 answered %q", got)
	}
	wantKept(t, st.Memory, 4, seq(4, 7)) // events 3 to 6 are numbered 4 to 7
}

// FuzzPage: any key and value, as a damaged store may hold, read without
// a panic, and a page written and read back gives its events in order.
func FuzzPage(f *testing.F) {
	f.Add(Prefix+"calls/00000000000000000007-2", []byte("6 {\"kind\":\"tool_call\"}\n7 {\"kind\":\"tool_call\"}\n"), "detail")
	f.Add(Prefix+"admin/00000000000000000001", []byte(`{"kind":"admin_change"}`), "")
	f.Add(Prefix+"calls/1-", []byte("x {\n\n 7"), "\n\u2028\"")
	f.Add(Prefix+"calls/00000000000000000009-1", []byte("s\xff\xff\xff\xff\x0f"), "")
	f.Add(Prefix+"calls/00000000000000000009-1", compressPage([]byte("9 {\"kind\":\"tool_call\"}\n9 {\"kind\":\"tool_call\"}\n")), "")
	f.Fuzz(func(t *testing.T, k string, v []byte, text string) {
		if c, p, ok := parseKey(k); ok {
			if got := pageKey(c, p); got != k {
				t.Errorf("parseKey(%q) then pageKey = %q", k, got)
			}
			_ = decodePage(nil, c, p, v)
		}
		items := []item{{seq: 41, class: classCalls, event: Event{Kind: KindToolCall, Detail: text}},
			{seq: 43, class: classCalls, event: Event{Kind: KindToolCall, User: text}}}
		got := decodePage(nil, classCalls, page{last: 43, n: 2}, appendPage(nil, items))
		if len(got) != 2 || got[0].seq != 41 || got[1].seq != 43 || got[0].event.Detail != text && utf8.ValidString(text) {
			t.Errorf("a page of %q read back as %+v", text, got)
		}
	})
}

// TestPageValues reads each form of a page's value: an older version's
// event, lines, and compressed lines, which for tool calls are a fraction
// of their size; lines that do not compress stay as they are, and a
// damaged compressed page, or one that claims to decode to more than a
// page may hold, is skipped.
func TestPageValues(t *testing.T) {
	var items []item
	for i := range maxBatch {
		e := Event{Kind: KindToolCall, User: fmt.Sprint("agent-", i%17, "@example.com"), Connector: "github", Tool: "search_code",
			Decision: DecisionAllow, Outcome: OutcomeOK, ArgsHash: fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15), Detail: fmt.Sprint(i)}
		items = append(items, item{seq: uint64(1000 + i), class: classCalls, event: e})
	}
	lines := appendPage(nil, items)
	packed := compressPage(lines)
	if packed[0] != compressedPage || len(packed) > len(lines)/3 {
		t.Errorf("%d bytes of tool calls compressed to %d", len(lines), len(packed))
	}
	p := page{last: 1000 + maxBatch - 1, n: maxBatch}
	for name, v := range map[string][]byte{"lines": lines, "compressed": packed} {
		got := decodePage(nil, classCalls, p, v)
		if len(got) != maxBatch || got[0].seq != 1000 || got[maxBatch-1].event.Detail != fmt.Sprint(maxBatch-1) {
			t.Errorf("%s: read back %d events", name, len(got))
		}
	}
	if got := decodePage(nil, classAdmin, page{last: 7, n: 1, bare: true}, []byte(`{"kind":"admin_change","detail":"old"}`)); len(got) != 1 || got[0].seq != 7 || got[0].event.Detail != "old" {
		t.Errorf("an older version's event: %+v", got)
	}
	noise := make([]byte, 4096)
	rand.NewChaCha8([32]byte{1}).Read(noise)
	if v := compressPage(noise); len(v) > len(noise) || v[0] == compressedPage {
		t.Errorf("%d bytes that do not compress were stored as %d, compressed: %v", len(noise), len(v), v[0] == compressedPage)
	}
	bomb := append([]byte{compressedPage}, binary.AppendUvarint(nil, 1<<40)...)
	for name, v := range map[string][]byte{"claims a terabyte": bomb, "damaged": append(packed[:len(packed)/2:len(packed)/2], 0xff)} {
		if got := decodePage(nil, classCalls, p, v); len(got) != 0 {
			t.Errorf("%s: read %d events", name, len(got))
		}
	}
}

// TestFilterPrefix: a query for a kind whose events are all in one class
// reads that class's folder only; one for a kind that attempts share with
// successes, or for every kind, reads the whole ring.
func TestFilterPrefix(t *testing.T) {
	for kind, want := range map[Kind]string{
		"":                    Prefix,
		KindAdminChange:       Prefix + "admin/",
		KindDrift:             Prefix + "drift/",
		KindRevocation:        Prefix + "auth/",
		KindApprovalApproved:  Prefix + "auth/",
		KindConsentStart:      Prefix + "auth-attempts/",
		KindApprovalRequested: Prefix + "calls/",
		KindToolCall:          Prefix,
		KindConsentFinish:     Prefix,
	} {
		if got := (Filter{Kind: kind}).prefix(); got != want {
			t.Errorf("kind %q reads %q, want %q", kind, got, want)
		}
	}
}
