package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// connect opens a connection the test closes at its end.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestStartIsolates: two Starts give two databases on one server, and a
// table made in one is not in the other.
func TestStartIsolates(t *testing.T) {
	ctx := context.Background()
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Starts returned the same database %s", a)
	}
	ua, _ := url.Parse(a)
	ub, _ := url.Parse(b)
	if ua.Host != ub.Host || !strings.HasPrefix(ua.Host, "127.0.0.1:") {
		t.Errorf("the databases are on %s and %s, want one server on 127.0.0.1", ua.Host, ub.Host)
	}
	if _, err := connect(t, a).Exec(ctx, "CREATE TABLE only_in_a (n int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	err := connect(t, b).QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("the other database sees the table: %d, %v", n, err)
	}
}

// TestStartDrops: a test's database is gone when the test ends.
func TestStartDrops(t *testing.T) {
	var dsn string
	t.Run("user", func(t *testing.T) {
		dsn = Start(t)
		connect(t, dsn)
	})
	_, err := pgx.Connect(context.Background(), dsn)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("connecting to the database of an ended test: %v, want it not to exist", err)
	}
}

// TestPasswordChecked: only the superuser is trusted; another role's
// wrong password is refused, so that a test can see the refusal.
func TestPasswordChecked(t *testing.T) {
	ctx := context.Background()
	dsn := Start(t)
	role := fmt.Sprintf("r%d", time.Now().UnixNano())
	if _, err := connect(t, dsn).Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'right-password'"); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword(role, "wrong-password")
	if _, err := pgx.Connect(ctx, u.String()); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("a wrong password: %v, want it refused", err)
	}
	u.User = url.UserPassword(role, "right-password")
	connect(t, u.String())
}

// TestServerStop: Stop stops the server and removes its directory, and
// a second Stop does nothing.
func TestServerStop(t *testing.T) {
	s := NewServer(t)
	connect(t, s.CreateDatabase(t))
	s.Stop()
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server's directory after Stop: %v, want it removed", err)
	}
	if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))); err == nil {
		conn.Close()
		t.Errorf("port %d still accepts connections after Stop", s.Port)
	}
	s.Stop()
}

// TestStartServer: a server started outside any test's cleanup accepts
// connections on its DSN, PID names its running postmaster, and Stop
// ends both and removes its directory.
func TestStartServer(t *testing.T) {
	s, err := StartServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	conn := connect(t, s.DSN("postgres"))
	var pid int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Field 4 of /proc/<pid>/stat, after the parenthesized name, is the
	// parent's pid: a backend's parent is the postmaster.
	var state string
	var ppid int
	if _, err := fmt.Sscan(string(stat[strings.LastIndexByte(string(stat), ')')+1:]), &state, &ppid); err != nil || ppid != s.PID() {
		t.Errorf("the backend's parent is %d (%v), want PID() %d", ppid, err, s.PID())
	}
	conn.Close(context.Background())
	s.Stop()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", s.PID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the postmaster after Stop: %v, want it gone", err)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server's directory after Stop: %v, want it removed", err)
	}
}

// TestHelperExits is the binary that TestReaperCleans runs and lets die:
// it starts the shared server, prints where, and exits at once, without
// any cleanup. It does nothing in an ordinary run.
func TestHelperExits(t *testing.T) {
	if os.Getenv("PGTEST_HELPER_EXITS") != "1" {
		return
	}
	s, err := sharedServer()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(s.dir, s.Port)
	os.Exit(0)
}

// TestReaperCleans: a test binary that exits, without running any
// cleanup, leaves neither a server nor its data behind.
func TestReaperCleans(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperExits$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGTEST_HELPER_EXITS=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the helper binary: %v\n%s", err, out)
	}
	var dir string
	var port int
	line, _, _ := bufio.NewReader(strings.NewReader(string(out))).ReadLine()
	if _, err := fmt.Sscan(string(line), &dir, &port); err != nil || !strings.Contains(filepath.Base(dir), "pgtest-") {
		t.Fatalf("the helper printed %q", out)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		_, err := os.Stat(dir)
		conn, dialErr := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if dialErr == nil {
			conn.Close()
		}
		if errors.Is(err, os.ErrNotExist) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the binary exited: the directory %s: %v; the port %d: %v", startTimeout, dir, err, port, dialErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFindBinaries: initdb on PATH wins when the server is beside its
// link's target; else Debian's newest version directory; else an error
// that says to run scripts/test.
func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	fake := func(dir string) string {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	fake(filepath.Join(root, "lib", "9.6", "bin"))
	v15 := fake(filepath.Join(root, "lib", "15", "bin"))
	pattern := filepath.Join(root, "lib", "*", "bin")
	missing := func(string) (string, error) { return "", exec.ErrNotFound }

	if dir, err := findBinaries(missing, pattern); err != nil || dir != v15 {
		t.Errorf("Debian's directories: %q, %v, want %q", dir, err, v15)
	}
	own := fake(filepath.Join(root, "own"))
	link := filepath.Join(root, "path", "initdb")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(filepath.Join(own, "initdb"), link); err != nil {
		t.Fatal(err)
	}
	onPath := func(string) (string, error) { return link, nil }
	if dir, err := findBinaries(onPath, pattern); err != nil || dir != own {
		t.Errorf("initdb on PATH: %q, %v, want %q", dir, err, own)
	}
	_, err := findBinaries(missing, filepath.Join(root, "none", "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "scripts/test") {
		t.Errorf("no PostgreSQL: %v, want an error saying to run scripts/test", err)
	}
}

// TestIdentifierPart: a test's name becomes a short, safe identifier part.
func TestIdentifierPart(t *testing.T) {
	for name, want := range map[string]string{
		"TestX/sub-case#01":     "testx_sub_case_01",
		`Test"; DROP TABLE x;`:  "test___drop_table_x_",
		strings.Repeat("a", 80): strings.Repeat("a", 40),
	} {
		if got := identifierPart(name); got != want {
			t.Errorf("identifierPart(%q) = %q, want %q", name, got, want)
		}
	}
}
