package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/storetest"
)

// deadline bounds every wait for something that must happen; nothing
// here asserts that it happens quickly.
const deadline = 60 * time.Second

// openStore opens dsn for the test and closes it when the test ends.
func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sql opens a plain connection to dsn for the test to look underneath.
func sql(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestConformance runs the store suite on PostgreSQL, a database each,
// and on Sealed over it, which is how mcpgate uses a shared store.
func TestConformance(t *testing.T) {
	key := sha256.Sum256([]byte("mcpgate postgres conformance seal key"))
	ring, err := store.NewRing([][]byte{key[:]})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("postgres", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Shared {
			return openStore(t, pgtest.Start(t))
		})
	})
	t.Run("sealed-postgres", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Shared {
			return store.Seal(openStore(t, pgtest.Start(t)), ring)
		})
	})
}

// TestOpenConcurrent: instances that start at once on an empty database
// all open it, and the schema is applied once, under the advisory lock.
func TestOpenConcurrent(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn, nil)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	rows, err := sql(t, dsn).Query(t.Context(), "SELECT version FROM mcpgate_schema_version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(versions) != len(migrations) {
		t.Fatalf("schema versions recorded: %v, %v; want 1 to %d once each", versions, err, len(migrations))
	}
	for i, v := range versions {
		if int(v) != i+1 {
			t.Errorf("schema versions recorded: %v, want 1 to %d once each", versions, len(migrations))
		}
	}
}

// TestOpenNewerSchema: an instance refuses a schema newer than it knows,
// which a newer instance migrated, rather than misread it.
func TestOpenNewerSchema(t *testing.T) {
	dsn := pgtest.Start(t)
	openStore(t, dsn)
	if _, err := sql(t, dsn).Exec(t.Context(), "INSERT INTO mcpgate_schema_version (version) VALUES ($1)", len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "newer than this mcpgate's") {
		t.Errorf("Open of a newer schema: %v, want a refusal", err)
	}
}

// TestNotifyAcrossInstances: a notice sent through one instance reaches
// the subscribers of another instance (another pool, another listener)
// and of the sender's own.
func TestNotifyAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	heard := make(chan string, 4)
	for name, s := range map[string]*Store{"a": a, "b": b} {
		err := s.Subscribe(t.Context(), "grants", func(p string) { heard <- name + ":" + p })
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Notify(t.Context(), "grants", "changed alice/github"); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case p := <-heard:
			got[p] = true
		case <-time.After(deadline):
			t.Fatalf("heard only %v", got)
		}
	}
	if !got["a:changed alice/github"] || !got["b:changed alice/github"] {
		t.Errorf("heard %v, want the notice on both instances", got)
	}
}

// TestListenerReconnects: when the listening connection breaks, the
// listener connects again and notices flow again.
func TestListenerReconnects(t *testing.T) {
	dsn := pgtest.Start(t)
	s := openStore(t, dsn)
	heard := make(chan string, 64)
	if err := s.Subscribe(t.Context(), "c", func(p string) { heard <- p }); err != nil {
		t.Fatal(err)
	}
	killed := s.listener.pid.Load()
	if _, err := sql(t, dsn).Exec(t.Context(), "SELECT pg_terminate_backend($1)", killed); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, deadline, "the listener reconnects", func() bool {
		if s.listener.pid.Load() == killed {
			return false
		}
		// A notice sent before the new LISTEN is lost; one after is heard.
		if err := s.Notify(t.Context(), "c", "after"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	if err := s.Subscribe(t.Context(), "c", func(string) {}); err != nil {
		t.Errorf("Subscribe after the reconnection: %v", err)
	}
}

// TestLeaseAcrossInstances: a lease taken through one instance holds the
// other off until it is released or expires, and the token grows.
func TestLeaseAcrossInstances(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Start(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	la, err := a.Acquire(ctx, "refresh/alice", "instance-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "refresh/alice", "instance-b", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("B's Acquire while A holds the lease: %v, want ErrLeaseHeld", err)
	}
	if err := a.Release(ctx, la); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Acquire(ctx, "refresh/alice", "instance-b", 300*time.Millisecond)
	if err != nil || lb.Token <= la.Token {
		t.Fatalf("B's Acquire after the release: %+v, %v; want a token above %d", lb, err, la.Token)
	}
	var la2 store.Lease
	wait.Until(t, deadline, "A takes the lease once B's expires", func() bool {
		la2, err = a.Acquire(ctx, "refresh/alice", "instance-a", time.Minute)
		return err == nil
	})
	if la2.Token <= lb.Token {
		t.Errorf("A's token %d after B's %d, want it greater", la2.Token, lb.Token)
	}
	if _, err := b.Renew(ctx, lb, time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("B's Renew after its lease expired: %v, want ErrLeaseLost", err)
	}
}

// TestExpiredRowsInvisible: a row whose expiry passed, still in the table
// because no sweep ran, is absent to every read and condition.
func TestExpiredRowsInvisible(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Start(t)
	s := openStore(t, dsn)
	for _, key := range []string{"old/a", "old/b", "old/c"} {
		_, err := sql(t, dsn).Exec(ctx, `INSERT INTO mcpgate_records (key, value, version, expires_at)
			VALUES ($1, 'stale', nextval('mcpgate_record_version'), now() - interval '1 second')`, key)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "old/a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	if keys, err := s.List(ctx, "old/"); err != nil || len(keys) != 0 {
		t.Errorf("List: %q, %v, want nothing", keys, err)
	}
	if _, err := s.Take(ctx, "old/a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take: %v, want ErrNotFound", err)
	}
	if ok, err := s.CompareAndSwap(ctx, "old/b", []byte("stale"), []byte("new")); ok || err != nil {
		t.Errorf("CompareAndSwap: %v, %v, want no swap", ok, err)
	}
	if ok, err := s.PutIfVersion(ctx, "old/b", []byte("created"), 0, 0); !ok || err != nil {
		t.Errorf("PutIfVersion(0) over an expired row: %v, %v, want it created", ok, err)
	}
	if got, err := s.Get(ctx, "old/b"); string(got) != "created" || err != nil {
		t.Errorf("Get after the create: %q, %v", got, err)
	}
	if n, err := s.sweepOnce(ctx); n != 1 || err != nil {
		t.Errorf("sweep: deleted %d, %v; want the one expired row left (old/c)", n, err)
	}
}

// TestKeysUTF8: a key PostgreSQL's text cannot hold is an invalid key,
// and a List prefix that is not UTF-8 still matches by bytes.
func TestKeysUTF8(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, pgtest.Start(t))
	if err := s.Put(ctx, "bad/\xff", []byte("v"), 0); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Put of a key that is not UTF-8: %v, want ErrInvalidKey", err)
	}
	if _, err := s.Acquire(ctx, "lease", "holder\xff", time.Minute); err == nil {
		t.Error("Acquire by a holder that is not UTF-8: no error")
	}
	for _, key := range []string{"p/é", "p/è", "p/e"} {
		if err := s.Put(ctx, key, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	// "é" is C3 A9 and "è" C3 A8: the prefix ends inside a character.
	if keys, err := s.List(ctx, "p/\xc3"); err != nil || strings.Join(keys, ",") != "p/è,p/é" {
		t.Errorf("List of a prefix ending in half a character: %q, %v", keys, err)
	}
	if keys, err := s.List(ctx, "p/\x00"); err != nil || len(keys) != 0 {
		t.Errorf("List of a prefix with NUL: %q, %v, want nothing", keys, err)
	}
}

// TestPasswordNotInErrors: no error of Open names the DSN's password,
// whether the password is wrong, the server is down or the DSN is bad.
func TestPasswordNotInErrors(t *testing.T) {
	dsn := pgtest.Start(t)
	const password = "hunter2-not-this-one"
	role := fmt.Sprintf("r%d", time.Now().UnixNano())
	if _, err := sql(t, dsn).Exec(t.Context(), "CREATE ROLE "+role+" LOGIN PASSWORD 'the-right-one'"); err != nil {
		t.Fatal(err)
	}
	wrong, _ := url.Parse(dsn)
	wrong.User = url.UserPassword(role, password)
	down := *wrong
	down.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(closedPort(t)))
	for name, dsn := range map[string]string{
		"wrong password": wrong.String(),
		"server down":    down.String(),
		"bad url":        "postgres://" + role + ":" + password + "@127.0.0.1:notaport/db",
		"bad keywords":   "host=127.0.0.1 password=" + password + " port=notaport",
		"unquoted":       "host=127.0.0.1 password='" + password,
	} {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		s, err := Open(ctx, dsn, nil)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error names the password: %v", name, err)
		}
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestScrub: an error that quotes the password has it replaced, and
// others pass unchanged, their chain kept.
func TestScrub(t *testing.T) {
	leak := errors.New(`server said: bad password "s3cret" for alice`)
	if got := scrub(leak, "s3cret"); strings.Contains(got.Error(), "s3cret") || errors.Is(got, leak) {
		t.Errorf("scrub: %v (chain kept: %v)", got, errors.Is(got, leak))
	}
	plain := fmt.Errorf("dialing: %w", context.DeadlineExceeded)
	if got := scrub(plain, "s3cret"); got != plain {
		t.Errorf("scrub changed an error without the password: %v", got)
	}
	if got := scrub(plain, ""); got != plain {
		t.Errorf("scrub with no password: %v", got)
	}
}

// TestCloseStops: Close ends the listener, the sweeper, the pool and
// every subscription, whose contexts may live on; nothing is left running.
func TestCloseStops(t *testing.T) {
	dsn := pgtest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Subscribe(context.Background(), "c", func(string) {}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
}

// TestDatabaseDown: with the server gone, calls fail with an error
// rather than hang or report a missing record, a subscription cannot be
// put in place, and Close still returns.
func TestDatabaseDown(t *testing.T) {
	server := pgtest.NewServer(t)
	s, err := Open(t.Context(), server.CreateDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	server.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
		t.Errorf("Get with the database down: %v, want a connection error in time", err)
	}
	short, cancelShort := context.WithTimeout(t.Context(), time.Second)
	defer cancelShort()
	if err := s.Subscribe(short, "c", func(string) {}); err == nil {
		t.Error("Subscribe with the database down: no error")
	}
}
