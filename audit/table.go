package audit

import (
	"context"
	"time"
)

// Table is a shared home for audit events, in place of the rings in a
// Store: one table that several instances write to and query, each event
// under an identity of its own, where rings of several instances in one
// key space would overwrite each other's keys. store/postgres has one.
// Every method is safe for concurrent use; a Log calls Append and Trim
// from one writer, in the background.
type Table interface {
	// Append keeps events, in their order, in one statement or
	// transaction: all or none. Each is kept under its Class.
	Append(ctx context.Context, events []Event) error
	// Query returns the events f selects (Since, User, Connector and
	// Kind, as Filter documents them), newest first by Time, at most
	// f.Limit of them, which is set.
	Query(ctx context.Context, f Filter) ([]Event, error)
	// Trim deletes, in each of classes, all but the newest keep events.
	Trim(ctx context.Context, classes []string, keep int) error
}

// tableTimeout bounds each Append and Trim, so that a database that
// stops answering holds up the writer (and a Close) for a while only;
// meanwhile events that find their buffer full are dropped, and Record
// never waits.
const tableTimeout = 10 * time.Second

// tableKeeper keeps a ring's events in a Table.
type tableKeeper struct{ t Table }

// write appends batch to the table. The table trims its classes only
// when the ring asks, now and then, not on every batch.
func (k tableKeeper) write(batch []item, _ int) error {
	events := make([]Event, len(batch))
	for i, it := range batch {
		events[i] = it.event
	}
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	return k.t.Append(ctx, events)
}

// trim deletes the events beyond limit in each class.
func (k tableKeeper) trim(limit int) error {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	return k.t.Trim(ctx, classNames[:], limit)
}

// query asks the table.
func (k tableKeeper) query(ctx context.Context, f Filter) ([]Event, error) {
	return k.t.Query(ctx, f)
}

// Class returns the name of e's retention class, under which a Table
// keeps it: admin, auth, calls, auth-attempts or call-attempts. Each
// class keeps Max events (Options.Max), so that no flood of one class
// evicts an event of another.
func (e Event) Class() string { return classOf(e).String() }
