// Package postgres is a store.Shared kept in PostgreSQL, for several
// mcpgate instances sharing one state: records with versions and expiry,
// counters, leases with fencing tokens, and change notices over
// LISTEN/NOTIFY. Every instance opens the same database; the schema is
// created and migrated at Open, safely when several open at once.
//
// Times (expiry, leases) are the database's clock, one for every
// instance, so that instances whose clocks differ still agree on when a
// lease ends.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// Store is a store.Shared in a PostgreSQL database. Open one with Open and
// close it with Close; it is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	logger   *zap.Logger
	password string // the DSN's, kept only to scrub it from errors

	listener *listener
	hub      *store.Memory // delivers what listener hears, see Subscribe

	closing context.Context // ends at Close, ending the background work
	close   context.CancelFunc
	running sync.WaitGroup
}

// errDSN stands for every error parsing a DSN: those name parts of the
// string, and only part of a malformed one can be told apart from its
// password.
var errDSN = errors.New("store/postgres: the dsn does not parse as a PostgreSQL connection string (its text is left out of this error, since it may hold a password)")

// Open connects to the database that dsn names (a URL or key=value
// string, as libpq reads them; pool settings such as pool_max_conns
// included), creates or migrates the schema, and starts listening for
// notices. A nil logger discards the store's messages. No error names the
// DSN's password.
func Open(ctx context.Context, dsn string, logger *zap.Logger) (*Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	config, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errDSN
	}
	s, err := open(ctx, config, logger)
	return s, scrub(err, config.ConnConfig.Password)
}

// open is Open once the DSN has parsed.
func open(ctx context.Context, config *pgxpool.Config, logger *zap.Logger) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: opening the pool: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, logger: logger, password: config.ConnConfig.Password, hub: store.NewMemory()}
	s.closing, s.close = context.WithCancel(context.Background())
	s.listener, err = listen(ctx, config.ConnConfig, s)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.background(s.listener.run)
	s.background(s.sweep)
	return s, nil
}

// background runs fn on a goroutine that Close waits for.
func (s *Store) background(fn func(ctx context.Context)) {
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		fn(s.closing)
	}()
}

// Close stops listening and sweeping, waits for both, and closes the pool.
// Subscriptions end with it.
func (s *Store) Close() error {
	s.close()
	s.running.Wait()
	s.pool.Close()
	return nil
}

// scrub replaces password in err's text. pgx leaves passwords out of its
// errors, but a connection error quotes what the server and the network
// said; should one ever echo the password, it still does not reach a log.
// The scrubbed error drops the chain, which would still hold the text.
func scrub(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

// checkKey checks key as every backend does, and that it is UTF-8, which
// PostgreSQL's text requires (Memory and Badger store any bytes).
func checkKey(key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w %q: not UTF-8, which PostgreSQL's text requires", store.ErrInvalidKey, key)
	}
	return nil
}

// wrap names the operation and the key in err; nil stays nil. Values
// never go into an error: they may be sealed secrets.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return scrub(fmt.Errorf("store/postgres: %s %q: %w", op, key, err), s.password)
}

var _ store.Shared = (*Store)(nil)
