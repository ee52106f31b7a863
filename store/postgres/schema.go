package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaLock is the key of the advisory lock that Open holds while it
// migrates, so that instances starting at once migrate one after another
// and the later ones find the work done. Advisory locks are one space per
// database; the key spells "mcpgate" so as not to meet an application's.
const schemaLock int64 = 0x6d63706761746500

// migrations are the schema's versions in order: migrations[i] takes the
// schema from version i to i+1. A released one is never edited; a change
// is a new one at the end.
var migrations = []string{
	// Version 1. Keys are compared as bytes (COLLATE "C"), the lexical
	// order of Go's strings, which List promises; C also lets
	// starts_with use the primary key's index. A record's version comes
	// from one sequence for every key, so that a key deleted and written
	// again never repeats a version a reader may hold. A lease's row
	// outlives the lease, keeping its last token so that tokens grow.
	`CREATE SEQUENCE mcpgate_record_version;
	CREATE TABLE mcpgate_records (
		key        text COLLATE "C" PRIMARY KEY,
		value      bytea NOT NULL,
		version    bigint NOT NULL,
		expires_at timestamptz
	);
	CREATE INDEX mcpgate_records_expiry ON mcpgate_records (expires_at) WHERE expires_at IS NOT NULL;
	CREATE TABLE mcpgate_counters (
		key   text COLLATE "C" PRIMARY KEY,
		count bigint NOT NULL
	);
	CREATE TABLE mcpgate_leases (
		name       text COLLATE "C" PRIMARY KEY,
		holder     text,
		token      bigint NOT NULL,
		expires_at timestamptz
	);`,
	// Version 2: the audit log (see AuditTable), one table for every
	// instance, each event under an id of its own. Queries read it newest
	// first by time, with or without a lower bound (the first index);
	// trimming finds the newest of each class (the second).
	`CREATE TABLE mcpgate_audit (
		id          bigserial PRIMARY KEY,
		occurred_at timestamptz NOT NULL,
		class       text NOT NULL,
		kind        text NOT NULL,
		user_name   text NOT NULL,
		connector   text NOT NULL,
		event       json NOT NULL
	);
	CREATE INDEX mcpgate_audit_time ON mcpgate_audit (occurred_at, id);
	CREATE INDEX mcpgate_audit_class ON mcpgate_audit (class, occurred_at, id);`,
}

// migrate brings the schema to the last version under schemaLock. The lock
// is the transaction's, so that it is released even if this process dies
// mid-way, and the migration is one transaction: DDL is transactional in
// PostgreSQL, so an instance sees the old schema or the new, never half.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLock); err != nil {
			return fmt.Errorf("taking the schema lock: %w", err)
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > len(migrations) {
			return fmt.Errorf("the database's schema is at version %d, newer than this mcpgate's %d: upgrade this instance", current, len(migrations))
		}
		for v := current + 1; v <= len(migrations); v++ {
			if err := apply(ctx, tx, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store/postgres: preparing the schema: %w", err)
	}
	return nil
}

// schemaVersion creates the version table if it is missing and returns
// the last version applied, 0 for an empty database.
func schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mcpgate_schema_version (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return 0, fmt.Errorf("creating the version table: %w", err)
	}
	var version int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM mcpgate_schema_version").Scan(&version); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return version, nil
}

// apply runs the migration to version v and records it.
func apply(ctx context.Context, tx pgx.Tx, v int) error {
	if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
		return fmt.Errorf("migrating to version %d: %w", v, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO mcpgate_schema_version (version) VALUES ($1)", v); err != nil {
		return fmt.Errorf("recording version %d: %w", v, err)
	}
	return nil
}
