package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// The SQL of the records. A record whose expires_at has passed is gone
// for every read and every condition, though its row may linger until
// sweep deletes it. $ttl parameters are microseconds, 0 for no expiry.
const (
	live   = `(expires_at IS NULL OR expires_at > now())`
	expiry = `CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 microsecond' END`

	getSQL = `SELECT value, version FROM mcpgate_records WHERE key = $1 AND ` + live

	putSQL = `INSERT INTO mcpgate_records AS r (key, value, version, expires_at)
		VALUES ($1, $2, nextval('mcpgate_record_version'), ` + expiry + `)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at`

	// createSQL is putSQL that overwrites only a record that expired:
	// a create-only write, for which an expired record is absent.
	createSQL = putSQL + ` WHERE r.expires_at <= now()`

	updateSQL = `UPDATE mcpgate_records SET value = $2, version = nextval('mcpgate_record_version'), expires_at = ` + expiry + `
		WHERE key = $1 AND version = $4 AND ` + live

	// takeSQL deletes an expired record too, but reports it so.
	takeSQL = `DELETE FROM mcpgate_records WHERE key = $1 RETURNING value, ` + live

	deleteSQL = `DELETE FROM mcpgate_records WHERE key = $1`

	listSQL = `SELECT key FROM mcpgate_records WHERE starts_with(key, $1) AND ` + live + ` ORDER BY key`

	swapSQL = `UPDATE mcpgate_records SET value = $3, version = nextval('mcpgate_record_version')
		WHERE key = $1 AND value = $2 AND ` + live
)

// micros is ttl in whole microseconds, PostgreSQL's resolution, rounded
// up so that a ttl above zero never becomes 0, which means no expiry.
func micros(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return int64((ttl + time.Microsecond - 1) / time.Microsecond)
}

// Get returns the value under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	value, _, err := s.GetVersioned(ctx, key)
	return value, err
}

// GetVersioned returns the value under key and its version, or
// store.ErrNotFound.
func (s *Store) GetVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	var value []byte
	var version int64
	err := s.pool.QueryRow(ctx, getSQL, key).Scan(&value, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, store.ErrNotFound
	}
	if err != nil {
		return nil, 0, s.wrap("getting", key, err)
	}
	return value, uint64(version), nil
}

// Put stores value under key; a ttl above zero expires it.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, putSQL, key, nonNil(value), micros(ttl))
	return s.wrap("putting", key, err)
}

// PutIfVersion stores value under key if its version is still version;
// version 0 stores it only if there is no record under key, or one that
// expired. Of concurrent writers of one version, the row lock lets one
// through and the others find the version changed.
func (s *Store) PutIfVersion(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	sql, args := updateSQL, []any{key, nonNil(value), micros(ttl), int64(version)}
	if version == 0 {
		sql, args = createSQL, args[:3]
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return false, s.wrap("putting", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Take returns the value under key and deletes it in one statement: of
// concurrent Takes, one deletes the row and the others find none.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var value []byte
	var alive bool
	err := s.pool.QueryRow(ctx, takeSQL, key).Scan(&value, &alive)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && !alive {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("taking", key, err)
	}
	return value, nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, deleteSQL, key)
	return s.wrap("deleting", key, err)
}

// List returns the live keys that start with prefix, in lexical order.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	query, ok := sqlPrefix(prefix)
	if !ok {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, listSQL, query)
	if err != nil {
		return nil, s.wrap("listing", prefix, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrap("listing", prefix, err)
	}
	if query != prefix {
		keys = slices.DeleteFunc(keys, func(k string) bool { return !strings.HasPrefix(k, prefix) })
	}
	return keys, nil
}

// sqlPrefix returns what to send as List's prefix, which PostgreSQL's
// text must hold: the prefix up to its first byte that is not UTF-8
// (List then filters the keys by the whole prefix), and false for a
// prefix with NUL, which no key has.
func sqlPrefix(prefix string) (string, bool) {
	if strings.IndexByte(prefix, 0) >= 0 {
		return "", false
	}
	for i, r := range prefix {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(prefix[i:]); size == 1 {
				return prefix[:i], true
			}
		}
	}
	return prefix, true
}

// CompareAndSwap replaces the value under key with value if it equals old,
// keeping the record's expiry, in one statement.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, swapSQL, key, nonNil(old), nonNil(value))
	if err != nil {
		return false, s.wrap("swapping", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Batch applies writes in order in one transaction, after checking every
// key: a reader sees all of them or none.
func (s *Store) Batch(ctx context.Context, writes []store.Write) error {
	for _, w := range writes {
		if err := checkKey(w.Key); err != nil {
			return err
		}
	}
	if len(writes) == 0 {
		return nil
	}
	var batch pgx.Batch
	for _, w := range writes {
		if w.Delete {
			batch.Queue(deleteSQL, w.Key)
		} else {
			batch.Queue(putSQL, w.Key, nonNil(w.Value), micros(w.TTL))
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &batch).Close()
	})
	return s.wrap("writing a batch from", writes[0].Key, err)
}

// nonNil turns a nil value into an empty one: pgx sends nil as NULL, and
// a stored value is never NULL (Put of nil stores an empty value, as
// Memory does).
func nonNil(value []byte) []byte {
	if value == nil {
		return []byte{}
	}
	return value
}
