package audit

import (
	"context"
	"errors"
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

// tableBackoff is how long after a failed Append the batches that follow
// are dropped without a try: a database that hangs would otherwise hold
// each of them for tableTimeout, and a Close that drains many of them
// for minutes.
const tableBackoff = time.Second

// errBackoff fails the batches written during tableBackoff.
var errBackoff = errors.New("audit: the table failed a moment ago; the batch is dropped without a try")

// tableKeeper keeps a ring's events in a Table.
type tableKeeper struct {
	t      Table
	now    func() time.Time
	failed time.Time // when an Append last failed; the writer's only
}

// write appends batch to the table, unless an Append failed less than
// tableBackoff ago. The table trims its classes only when the ring asks,
// now and then, not on every batch.
func (k *tableKeeper) write(batch []item, _ int) error {
	if !k.failed.IsZero() && k.now().Sub(k.failed) < tableBackoff {
		return errBackoff
	}
	events := make([]Event, len(batch))
	for i, it := range batch {
		events[i] = it.event
	}
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	err := k.t.Append(ctx, events)
	if err != nil {
		k.failed = k.now()
	}
	return err
}

// trim deletes the events beyond limit in each class.
func (k *tableKeeper) trim(limit int) error {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	return k.t.Trim(ctx, classNames[:], limit)
}

// query asks the table, which trims its classes itself.
func (k *tableKeeper) query(ctx context.Context, f Filter, _ int) ([]Event, error) {
	return k.t.Query(ctx, f)
}

// Class returns the name of e's retention class, under which a Table
// keeps it: admin, auth, calls, auth-attempts or call-attempts. Each
// class keeps Max events (Options.Max), so that no flood of one class
// evicts an event of another.
func (e Event) Class() string { return classOf(e).String() }
