package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// The SQL of the leases, in the database's clock. A lease's row stays
// after it is released or lost, so that its token keeps growing.
const (
	// acquireSQL takes a lease that is free (released or expired), or
	// renews one the holder holds. Only a new acquisition, by another
	// holder or after the lease lapsed, takes a new token; a holder whose
	// lease lapsed lost it, and its old token must not pass for the new.
	acquireSQL = `INSERT INTO mcpgate_leases AS l (name, holder, token, expires_at)
		VALUES ($1, $2, 1, now() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET
			token = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.token ELSE l.token + 1 END,
			holder = excluded.holder,
			expires_at = excluded.expires_at
		WHERE l.holder IS NULL OR l.expires_at <= now() OR l.holder = excluded.holder
		RETURNING token, expires_at`

	// held is the condition that the lease is still the one the caller
	// holds: same holder, same token, unexpired.
	held = `name = $1 AND holder = $2 AND token = $3 AND expires_at > now()`

	renewSQL = `UPDATE mcpgate_leases SET expires_at = now() + $4::bigint * interval '1 microsecond'
		WHERE ` + held + ` RETURNING expires_at`

	releaseSQL = `UPDATE mcpgate_leases SET holder = NULL, expires_at = NULL WHERE ` + held
)

// Acquire takes the lease on name for holder for ttl, or returns
// store.ErrLeaseHeld if another holder holds it unexpired. A holder that
// holds it already gets it renewed, with the same token.
func (s *Store) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	l := store.Lease{Name: name, Holder: holder}
	var token int64
	err := s.pool.QueryRow(ctx, acquireSQL, name, holder, micros(ttl)).Scan(&token, &l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, store.ErrLeaseHeld
	}
	if err != nil {
		return store.Lease{}, s.wrap("acquiring the lease on", name, err)
	}
	l.Token = uint64(token)
	return l, nil
}

// Renew extends l to ttl from now if it is still held, or returns
// store.ErrLeaseLost. A lease that expired is lost even if no one took it:
// its holder cannot know that no one did.
func (s *Store) Renew(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := checkLease(l.Name, l.Holder, ttl); err != nil {
		return store.Lease{}, err
	}
	err := s.pool.QueryRow(ctx, renewSQL, l.Name, l.Holder, int64(l.Token), micros(ttl)).Scan(&l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, store.ErrLeaseLost
	}
	if err != nil {
		return store.Lease{}, s.wrap("renewing the lease on", l.Name, err)
	}
	return l, nil
}

// Release gives up l if it is still held, keeping its token for the next
// acquisition to pass; a lease already lost is no error.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	if err := checkKey(l.Name); err != nil {
		return fmt.Errorf("store/postgres: lease name: %w", err)
	}
	_, err := s.pool.Exec(ctx, releaseSQL, l.Name, l.Holder, int64(l.Token))
	return s.wrap("releasing the lease on", l.Name, err)
}

// checkLease checks the arguments of Acquire and Renew as the other
// backends do.
func checkLease(name, holder string, ttl time.Duration) error {
	if err := checkKey(name); err != nil {
		return fmt.Errorf("store/postgres: lease name: %w", err)
	}
	if holder == "" {
		return errors.New("store/postgres: lease holder is empty")
	}
	if !utf8.ValidString(holder) || strings.IndexByte(holder, 0) >= 0 {
		return errors.New("store/postgres: lease holder is not UTF-8 text without NUL, which PostgreSQL's text requires")
	}
	if ttl <= 0 {
		return fmt.Errorf("store/postgres: lease ttl %v is not above zero", ttl)
	}
	return nil
}
