package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// recordingTable is a Table that keeps what it is given and the filters
// it is asked with; store/postgres tests the Log over a real one.
type recordingTable struct {
	mu      sync.Mutex
	events  []Event
	filters []Filter
	trims   []int
}

func (r *recordingTable) Append(_ context.Context, events []Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
	return nil
}

func (r *recordingTable) Query(_ context.Context, f Filter) ([]Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.filters = append(r.filters, f)
	out := slices.Clone(r.events)
	slices.Reverse(out)
	return out[:min(len(out), f.Limit)], nil
}

func (r *recordingTable) Trim(_ context.Context, classes []string, keep int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Equal(classes, classNames[:]) { // else the test sees no trim
		r.trims = append(r.trims, keep)
	}
	return nil
}

// TestTableSeam: a Log given a Table writes its events there and asks it
// its queries, with the limit set to the default or cut to what the
// classes keep, and trims every class to Max.
func TestTableSeam(t *testing.T) {
	table := &recordingTable{}
	l := newLog(t, Options{Table: table, Max: 2})
	l.Record(Event{Kind: KindAdminChange, Detail: "1"})
	l.Record(Event{Kind: KindToolCall, Decision: DecisionAllow, Detail: "2"})
	if got := details(query(t, l, Filter{User: "alice"})); !slices.Equal(got, []string{"2", "1"}) {
		t.Errorf("Query = %q", got)
	}
	query(t, l, Filter{Limit: 1000})
	table.mu.Lock()
	defer table.mu.Unlock()
	if want := []Filter{{User: "alice", Limit: 2 * int(numClasses)}, {Limit: 2 * int(numClasses)}}; !slices.Equal(table.filters, want) {
		t.Errorf("the table was asked %+v, want %+v", table.filters, want)
	}
	if len(table.trims) == 0 || table.trims[0] != 2 {
		t.Errorf("trims %v, want every class to 2", table.trims)
	}
}

// TestTableDefaultLimit: a Query without a limit asks the table for
// DefaultLimit events.
func TestTableDefaultLimit(t *testing.T) {
	table := &recordingTable{}
	l := newLog(t, Options{Table: table})
	query(t, l, Filter{})
	if len(table.filters) != 1 || table.filters[0].Limit != DefaultLimit {
		t.Errorf("the table was asked %+v", table.filters)
	}
}

// TestStoreAndTable: a Log takes a Store or a Table, not both.
func TestStoreAndTable(t *testing.T) {
	if _, err := New(Options{Store: store.NewMemory(), Table: &recordingTable{}}); err == nil {
		t.Error("New took a Store and a Table")
	}
}

// TestEventClass names each kind's class as the store's folders do.
func TestEventClass(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Kind: KindAdminChange}, "admin"},
		{Event{Kind: KindRevocation}, "auth"},
		{Event{Kind: KindToolCall, Decision: DecisionAllow}, "calls"},
		{Event{Kind: KindConsentStart}, "auth-attempts"},
		{Event{Kind: KindToolCall, Decision: DecisionDeny}, "call-attempts"},
	} {
		if got := tc.e.Class(); got != tc.want {
			t.Errorf("%+v: Class = %q, want %q", tc.e, got, tc.want)
		}
	}
}

// failingTable is a Table whose Append fails, counting the tries.
type failingTable struct {
	recordingTable
	appends int
}

func (f *failingTable) Append(context.Context, []Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends++
	return errors.New("the database is down")
}

// TestTableBackoff: after a failed Append, the batches written within
// tableBackoff are dropped without a try, so that a hung database holds
// the writer (and a Close) for one timeout rather than one per batch;
// after it, the table is tried again.
func TestTableBackoff(t *testing.T) {
	clock := newClock()
	table := &failingTable{}
	l := newLog(t, Options{Table: table, Now: clock.Now})
	tries := func() int {
		table.mu.Lock()
		defer table.mu.Unlock()
		return table.appends
	}
	for i, want := range []struct{ tries, dropped int }{{1, 1}, {1, 2}, {2, 3}} {
		if i == 2 {
			clock.Add(tableBackoff)
		}
		l.Record(Event{Kind: KindAdminChange, Detail: fmt.Sprint(i)})
		query(t, l, Filter{})
		if n, d := tries(), l.Dropped(); n != want.tries || d != uint64(want.dropped) {
			t.Errorf("after event %d: %d tries, %d dropped; want %d and %d", i, n, d, want.tries, want.dropped)
		}
	}
}
