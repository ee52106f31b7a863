// Package pgtest runs a private PostgreSQL server for tests: initdb into a
// temporary directory, listening on 127.0.0.1 and a free port only, as the
// postgres user when the tests run as root (PostgreSQL refuses root). A
// test gets a fresh database of its own with Start. Without PostgreSQL
// installed a test fails, saying to run scripts/test; it never skips.
// A program outside `go test`, such as the benchmark, starts one with
// StartServer.
package pgtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// shared is the server every Start of this test binary uses, started by
// the first. It is never stopped by a test: its reaper stops it when the
// binary exits, since the binary cannot tell which test is the last.
var shared struct {
	mu     sync.Mutex
	server *Server
	err    error
}

// Start returns the connection string of a new, empty database for the
// test, on the test binary's shared server, started by the first call.
// The database is dropped when the test ends; parallel tests each get
// their own. The superuser postgres connects without a password.
func Start(t testing.TB) string {
	t.Helper()
	s, err := sharedServer()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s.CreateDatabase(t)
}

// sharedServer starts the shared server once. A failure is kept, so that
// every later test fails at once with the same reason instead of each
// waiting for a start that failed.
func sharedServer() (*Server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.server == nil && shared.err == nil {
		shared.server, shared.err = StartServer()
	}
	return shared.server, shared.err
}

// databases numbers the databases made by this binary, so that each name
// is unique on a shared server.
var databases atomic.Uint64

// CreateDatabase makes a new, empty database on s for the test, dropped
// when the test ends, and returns its connection string.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", databases.Add(1), identifierPart(t.Name()))
	if err := s.admin("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if s.stopped.Load() {
			return // a stopped server's data is removed already
		}
		// FORCE ends connections a test left open rather than failing.
		if err := s.admin("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// admin runs one statement as the superuser in the postgres database. It
// is quick; startTimeout bounds it only so that a hung server fails the
// test instead of hanging it.
func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// identifierPart turns a test's name into lowercase letters, digits and
// underscores, short enough for PostgreSQL's 63-byte names with a prefix.
func identifierPart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 40 {
			break
		}
	}
	return b.String()
}
