package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/caddy-mcpgate/audit"
)

// auditTable names the audit table in errors.
const auditTable = "mcpgate_audit"

// trimLock is the key of the advisory lock an instance holds while it
// trims the audit table: another instance that finds it taken skips its
// trim, since the one running does the same work, rather than wait or
// deadlock with it on the rows both would delete. The key follows
// schemaLock's.
const trimLock = schemaLock + 1

// The SQL of the audit table. A batch is one INSERT of arrays, in the
// batch's order, so that the ids follow it. A trim deletes, in each
// class, every event at or below the newest keep+1st by time, which the
// class index finds at once.
const (
	appendSQL = `INSERT INTO mcpgate_audit (occurred_at, class, kind, user_name, connector, event)
		SELECT a, c, k, u, n, e
		FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::json[])
			WITH ORDINALITY AS b(a, c, k, u, n, e, i)
		ORDER BY i`

	trimSQL = `DELETE FROM mcpgate_audit a USING (
			SELECT cut.class, cut.occurred_at, cut.id
			FROM unnest($1::text[]) AS c(class)
			CROSS JOIN LATERAL (
				SELECT class, occurred_at, id FROM mcpgate_audit WHERE class = c.class
				ORDER BY occurred_at DESC, id DESC OFFSET $2 LIMIT 1) cut
		) k
		WHERE a.class = k.class AND (a.occurred_at, a.id) <= (k.occurred_at, k.id)`

	lockTrimSQL = `SELECT pg_try_advisory_xact_lock($1)`
)

// AuditTable is the audit log's table in the database: an audit.Table
// that every instance sharing the database writes to and queries, so
// that each one's audit queries show every instance's events. Get it
// with Store.Audit. No event field is a secret (tool arguments are hashed
// before they reach an event), yet none goes into an error either.
type AuditTable Store

// Audit returns the store's audit table. It is the store itself under
// another type, so that every call returns the same value, by which Logs
// on one table share their writer (see audit.Options.Table).
func (s *Store) Audit() *AuditTable { return (*AuditTable)(s) }

// store is t as the Store it is.
func (t *AuditTable) store() *Store { return (*Store)(t) }

// Append inserts events in one statement, in their order.
func (t *AuditTable) Append(ctx context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	times, classes, kinds, users, conns, docs := make([]time.Time, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	// One buffer for the batch's documents, encoded by hand: reflection
	// was half of what appending a batch cost the gateway.
	var buf []byte
	for i, e := range events {
		buf = e.AppendJSON(buf[:0])
		times[i], classes[i], kinds[i] = e.Time, e.Class(), text(string(e.Kind))
		users[i], conns[i], docs[i] = text(e.User), text(e.Connector), string(buf)
	}
	_, err := t.pool.Exec(ctx, appendSQL, times, classes, kinds, users, conns, docs)
	return t.store().wrap("appending to", auditTable, err)
}

// Query returns the events f selects, newest first by time, at most
// f.Limit of them.
func (t *AuditTable) Query(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	if f.Limit < 1 {
		return nil, fmt.Errorf("store/postgres: querying %s: limit %d is not positive", auditTable, f.Limit)
	}
	sql, args := selectEvents(f)
	rows, err := t.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, t.store().wrap("querying", auditTable, err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, t.store().wrap("querying", auditTable, err)
	}
	return decodeEvents(docs, f), nil
}

// selectEvents is the query of the events f selects and its arguments:
// a condition for each field that f sets, and none for the others, so
// that the planner sees what the query asks for.
func selectEvents(f audit.Filter) (string, []any) {
	var where []string
	var args []any
	cond := func(column string, op string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf("%s %s $%d", column, op, len(args)))
	}
	if !f.Since.IsZero() {
		cond("occurred_at", ">=", f.Since)
	}
	for _, c := range [...]struct{ column, value string }{
		{"user_name", f.User}, {"connector", f.Connector}, {"kind", string(f.Kind)},
	} {
		if c.value != "" {
			cond(c.column, "=", text(c.value))
		}
	}
	sql := "SELECT event FROM mcpgate_audit"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	return sql + fmt.Sprintf(" ORDER BY occurred_at DESC, id DESC LIMIT $%d", len(args)), args
}

// decodeEvents decodes docs, skipping one that does not decode, as the
// rings do, and one older than f.Since by less than the microsecond to
// which the database rounds times.
func decodeEvents(docs [][]byte, f audit.Filter) []audit.Event {
	out := make([]audit.Event, 0, len(docs))
	for _, doc := range docs {
		var e audit.Event
		if json.Unmarshal(doc, &e) != nil || e.Time.Before(f.Since) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Trim deletes, in each of classes, all but the newest keep events, in
// one statement, unless another instance is trimming at the moment.
func (t *AuditTable) Trim(ctx context.Context, classes []string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("store/postgres: trimming %s: keep %d is not positive", auditTable, keep)
	}
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, lockTrimSQL, trimLock).Scan(&mine); err != nil || !mine {
			return err
		}
		_, err := tx.Exec(ctx, trimSQL, classes, keep)
		return err
	})
	return t.store().wrap("trimming", auditTable, err)
}

// text makes s fit PostgreSQL's text, which holds neither NUL nor
// invalid UTF-8 (an event's fields may come from anyone's input): each is
// replaced with U+FFFD. Columns and filters go through it alike, so that
// a filter finds what its event's column holds; the event's JSON keeps
// the field as it was.
func text(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}

var _ audit.Table = (*AuditTable)(nil)
