package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The SQL of the counters, which live in their own table: a counter is
// not a record, so Get, List and Delete never meet one.
const (
	countSQL = `SELECT count FROM mcpgate_counters WHERE key = $1`
	addSQL   = `INSERT INTO mcpgate_counters AS c (key, count) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET count = c.count + excluded.count
		RETURNING count`
)

// numericOutOfRange is PostgreSQL's SQLSTATE for a bigint that overflows.
const numericOutOfRange = "22003"

// Add adds n to the counter under key, which starts at zero, in one
// statement, and returns the new count; adding zero reads the counter
// without writing it. A count is a bigint: one that would pass 2^63-1 is
// an error.
func (s *Store) Add(ctx context.Context, key string, n uint64) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("store/postgres: adding %d to %q: the count would overflow", n, key)
	}
	var count int64
	var err error
	if n == 0 {
		err = s.pool.QueryRow(ctx, countSQL, key).Scan(&count)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
	} else {
		err = s.pool.QueryRow(ctx, addSQL, key, int64(n)).Scan(&count)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == numericOutOfRange {
		return 0, fmt.Errorf("store/postgres: adding %d to %q: the count would overflow", n, key)
	}
	if err != nil {
		return 0, s.wrap("adding to", key, err)
	}
	return uint64(count), nil
}
