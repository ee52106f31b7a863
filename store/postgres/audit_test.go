package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// auditLog opens an audit Log over table for the test, closed when it
// ends (before the store, which openStore registered first).
func auditLog(t *testing.T, table audit.Table, opts audit.Options) *audit.Log {
	t.Helper()
	opts.Table = table
	l, err := audit.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// queryLog runs a Query that must succeed and returns the events'
// details.
func queryLog(t *testing.T, l *audit.Log, f audit.Filter) []string {
	t.Helper()
	events, err := l.Query(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Detail
	}
	return out
}

// auditRows counts the rows of the audit table by class.
func auditRows(t *testing.T, dsn string) map[string]int {
	t.Helper()
	rows, err := sql(t, dsn).Query(t.Context(), "SELECT class, count(*) FROM mcpgate_audit GROUP BY class")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var class string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&class, &n}, func() error {
		out[class] = int(n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// call is an allowed tool call.
func call(user, detail string) audit.Event {
	return audit.Event{Kind: audit.KindToolCall, Decision: audit.DecisionAllow, User: user, Connector: "notes", Detail: detail}
}

// TestAuditTwoInstances runs a Log on each of two instances (two stores
// on one database): both record, and each one's Query sees both
// instances' events, newest first.
func TestAuditTwoInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	start := time.Now()
	a := auditLog(t, openStore(t, dsn).Audit(), audit.Options{})
	b := auditLog(t, openStore(t, dsn).Audit(), audit.Options{})
	for i := range 3 {
		a.Record(audit.Event{Time: start.Add(time.Duration(2*i) * time.Second), Kind: audit.KindAdminChange, Detail: fmt.Sprint("a", i)})
		b.Record(audit.Event{Time: start.Add(time.Duration(2*i+1) * time.Second), Kind: audit.KindDisconnect, Detail: fmt.Sprint("b", i)})
	}
	want := []string{"b2", "a2", "b1", "a1", "b0", "a0"}
	// Each Query writes its own instance's events first: b's, then a's,
	// then b sees a's.
	queryLog(t, b, audit.Filter{})
	for _, inst := range []struct {
		name string
		l    *audit.Log
	}{{"a", a}, {"b", b}} {
		if got := queryLog(t, inst.l, audit.Filter{}); !slices.Equal(got, want) {
			t.Errorf("instance %s sees %q, want %q", inst.name, got, want)
		}
	}
	if got := queryLog(t, b, audit.Filter{Kind: audit.KindAdminChange}); !slices.Equal(got, []string{"a2", "a1", "a0"}) {
		t.Errorf("b sees a's admin changes as %q", got)
	}
}

// TestAuditReload runs two Logs on one table at once, as the old and the
// new config generation of a reload do: one closing leaves the other
// writing, and neither loses the other's events.
func TestAuditReload(t *testing.T) {
	s := openStore(t, pgtest.Start(t))
	old, fresh := auditLog(t, s.Audit(), audit.Options{}), auditLog(t, s.Audit(), audit.Options{})
	old.Record(call("alice", "old"))
	fresh.Record(call("alice", "new"))
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	fresh.Record(call("alice", "after"))
	if got := queryLog(t, fresh, audit.Filter{}); len(got) != 3 || got[0] != "after" {
		t.Errorf("after the old Log closed: %q", got)
	}
}

// TestAuditFilters checks each field of the filter on the table, alone
// and together.
func TestAuditFilters(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := auditLog(t, openStore(t, pgtest.Start(t)).Audit(), audit.Options{})
	users, conns := []string{"alice", "bob"}, []string{"notes", "team", "git"}
	for i := range 12 {
		l.Record(audit.Event{Time: start.Add(time.Duration(i) * time.Minute), Kind: audit.KindToolCall,
			User: users[i%2], Connector: conns[i%3], Detail: fmt.Sprint(i)})
	}
	l.Record(audit.Event{Time: start.Add(12 * time.Minute), Kind: audit.KindDisconnect, User: "alice", Connector: "notes", Detail: "12"})
	tests := []struct {
		name string
		f    audit.Filter
		want []string
	}{
		{"all", audit.Filter{}, []string{"12", "11", "10", "9", "8", "7", "6", "5", "4", "3", "2", "1", "0"}},
		{"limit", audit.Filter{Limit: 3}, []string{"12", "11", "10"}},
		{"since", audit.Filter{Since: start.Add(10 * time.Minute)}, []string{"12", "11", "10"}},
		{"since, within a microsecond", audit.Filter{Since: start.Add(10*time.Minute + 1)}, []string{"12", "11"}},
		{"user", audit.Filter{User: "bob"}, []string{"11", "9", "7", "5", "3", "1"}},
		{"connector", audit.Filter{Connector: "team"}, []string{"10", "7", "4", "1"}},
		{"user and connector", audit.Filter{User: "alice", Connector: "notes"}, []string{"12", "6", "0"}},
		{"kind", audit.Filter{Kind: audit.KindDisconnect}, []string{"12"}},
		{"everything", audit.Filter{Since: start.Add(5 * time.Minute), User: "bob", Connector: "team", Limit: 1}, []string{"7"}},
		{"nothing", audit.Filter{User: "carol"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := queryLog(t, l, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("Query(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		})
	}
}

// TestAuditText records events whose fields PostgreSQL's text cannot
// hold as they are (a NUL, invalid UTF-8): the batch goes in, a filter
// on such a field finds its event, and the event keeps what JSON keeps of
// it.
func TestAuditText(t *testing.T) {
	l := auditLog(t, openStore(t, pgtest.Start(t)).Audit(), audit.Options{})
	odd := "al\x00ice\xff"
	l.Record(call(odd, "odd"))
	l.Record(call("bob", "plain"))
	events, err := l.Query(t.Context(), audit.Filter{User: odd})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Detail != "odd" || !strings.HasPrefix(events[0].User, "al\x00ice") {
		t.Errorf("Query by the odd user = %+v", events)
	}
	if l.Dropped() != 0 {
		t.Errorf("%d events dropped", l.Dropped())
	}
}

// TestAuditRetention records interleaved events of three classes into
// classes of 3: the table keeps the newest 3 of each, and Query answers
// them across classes, newest first.
func TestAuditRetention(t *testing.T) {
	dsn := pgtest.Start(t)
	l := auditLog(t, openStore(t, dsn).Audit(), audit.Options{Max: 3})
	start := time.Now()
	kinds := []audit.Kind{audit.KindAdminChange, audit.KindDisconnect, audit.KindToolCall}
	for i := 1; i <= 15; i++ {
		l.Record(audit.Event{Time: start.Add(time.Duration(i) * time.Millisecond), Kind: kinds[i%3],
			Decision: audit.DecisionAllow, Detail: fmt.Sprint(i)})
	}
	if got := queryLog(t, l, audit.Filter{}); !slices.Equal(got, []string{"15", "14", "13", "12", "11", "10", "9", "8", "7"}) {
		t.Errorf("classes of 3: %q", got)
	}
	if got := queryLog(t, l, audit.Filter{Kind: audit.KindAdminChange}); !slices.Equal(got, []string{"15", "12", "9"}) {
		t.Errorf("the admin changes: %q", got)
	}
	if got, want := auditRows(t, dsn), map[string]int{"admin": 3, "auth": 3, "calls": 3}; !equalCounts(got, want) {
		t.Errorf("the table holds %v, want %v", got, want)
	}
}

// equalCounts reports whether two counts by class are equal.
func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// countingTable counts the trims of a table.
type countingTable struct {
	*AuditTable
	trims atomic.Int32
}

func (c *countingTable) Trim(ctx context.Context, classes []string, keep int) error {
	c.trims.Add(1)
	return c.AuditTable.Trim(ctx, classes, keep)
}

// TestAuditTrimSeldom: the writer trims the table when it opens and then
// after every eighth of the size it writes, not on every batch; a trim
// leaves each class at its size.
func TestAuditTrimSeldom(t *testing.T) {
	dsn := pgtest.Start(t)
	table := &countingTable{AuditTable: openStore(t, dsn).Audit()}
	l := auditLog(t, table, audit.Options{Max: 40}) // a trim every 5 events
	for i := range 4 {
		l.Record(call("alice", fmt.Sprint(i)))
	}
	queryLog(t, l, audit.Filter{Limit: 1})
	if n := table.trims.Load(); n != 1 {
		t.Errorf("%d trims after opening and writing 4 events, want 1", n)
	}
	l.Record(call("alice", "4"))
	queryLog(t, l, audit.Filter{Limit: 1})
	if n := table.trims.Load(); n != 2 {
		t.Errorf("%d trims after writing 5 events, want 2", n)
	}
	// A trim on a full table: the newest 2 calls stay.
	if err := table.Trim(t.Context(), []string{"calls"}, 2); err != nil {
		t.Fatal(err)
	}
	if got := queryLog(t, l, audit.Filter{}); !slices.Equal(got, []string{"4", "3"}) {
		t.Errorf("after trimming to 2: %q", got)
	}
}

// TestAuditTrimConcurrent: trims from several instances at once neither
// fail nor deadlock, and leave each class at its size.
func TestAuditTrimConcurrent(t *testing.T) {
	dsn := pgtest.Start(t)
	tables := []*AuditTable{openStore(t, dsn).Audit(), openStore(t, dsn).Audit(), openStore(t, dsn).Audit()}
	events := make([]audit.Event, 300)
	start := time.Now()
	for i := range events {
		events[i] = call("alice", fmt.Sprint(i))
		events[i].Time = start.Add(time.Duration(i) * time.Millisecond)
	}
	if err := tables[0].Append(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(tables))
	for _, table := range tables {
		go func() { errs <- table.Trim(t.Context(), []string{"calls", "admin"}, 10) }()
	}
	for range tables {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// One of them trimmed, the others found it trimming and left it; a
	// trim now finds nothing more to do.
	if err := tables[1].Trim(t.Context(), []string{"calls"}, 10); err != nil {
		t.Fatal(err)
	}
	if got := auditRows(t, dsn); !equalCounts(got, map[string]int{"calls": 10}) {
		t.Errorf("the table holds %v, want 10 calls", got)
	}
}

// TestAuditCloseFlushes: Close writes every event still waiting, so a
// Log on another instance finds them all.
func TestAuditCloseFlushes(t *testing.T) {
	dsn := pgtest.Start(t)
	l, err := audit.New(audit.Options{Table: openStore(t, dsn).Audit(), Buffer: 2000})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		l.Record(call("alice", fmt.Sprint(i)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	other := auditLog(t, openStore(t, dsn).Audit(), audit.Options{})
	if got := queryLog(t, other, audit.Filter{Limit: 2 * n}); len(got) != n || got[0] != fmt.Sprint(n-1) {
		t.Errorf("after Close another instance finds %d events, the newest %q; want %d", len(got), got[:min(1, len(got))], n)
	}
	if l.Dropped() != 0 {
		t.Errorf("%d dropped", l.Dropped())
	}
}

// TestAuditDatabaseDown: with the database gone, Record never waits (a
// buffer of 4 takes 200 events at once), the events the table cannot take
// are counted as dropped and logged as lines all the same, Query fails,
// and Close returns. The errors logged hold no event's field.
func TestAuditDatabaseDown(t *testing.T) {
	server := pgtest.NewServer(t)
	s, err := Open(t.Context(), server.CreateDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	core, logs := observer.New(zap.InfoLevel)
	l, err := audit.New(audit.Options{Logger: zap.New(core), Table: s.Audit(), Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	server.Stop()

	const canary = "canary-detail-9d1f"
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for range 200 {
			l.Record(call("alice", canary))
		}
	}()
	select {
	case <-recorded:
	case <-time.After(deadline):
		t.Fatal("Record waits for the database")
	}
	wait.Until(t, deadline, "events counted as dropped", func() bool { return l.Dropped() > 0 })
	if n := logs.FilterMessage("tool call").Len(); n != 200 {
		t.Errorf("%d tool call lines, want all 200", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	if _, err := l.Query(ctx, audit.Filter{}); err == nil || ctx.Err() != nil {
		t.Errorf("Query with the database down: %v, want an error in time", err)
	}
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(deadline):
		t.Fatal("Close waits for the database")
	}
	if l.Dropped() != 200 {
		t.Errorf("Dropped = %d after Close, want all 200", l.Dropped())
	}
	for _, e := range logs.FilterLevelExact(zap.ErrorLevel).All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), canary) {
			t.Errorf("an error line holds an event's field: %v %v", e.Message, e.ContextMap())
		}
	}
	if logs.FilterMessage("writing the audit ring").Len() == 0 {
		t.Error("no error logged for the lost events")
	}
}
