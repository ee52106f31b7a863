package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds how long the server may take to accept connections.
// It is quick alone, but on two cores beside race-enabled test binaries
// compiling and running, seconds stretch.
const startTimeout = 60 * time.Second

// startAttempts bounds the tries at a free port: the port is found free,
// then closed, then given to postgres, and a test elsewhere on the machine
// can take it in between.
const startAttempts = 3

// hba lets the postgres superuser in without a password, and everyone
// else only with one (SCRAM), so that a test can see a wrong password
// refused. Only loopback is listed: the server listens nowhere else.
const hba = `host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
`

// reaper stops the server and removes its directory once its standard
// input ends, that is once the test binary closes the pipe or exits in
// any way, killed included: PostgreSQL does not stop when its parent
// dies, and a data directory is tens of megabytes. SIGINT is PostgreSQL's
// fast shutdown. It runs as the server's user, which owns the directory.
// PostgreSQL removes postmaster.pid as the last step of a shutdown; the
// wait for it is bounded in case the server is already gone without.
const reaper = `cat >/dev/null
kill -INT "$1" 2>/dev/null
i=0
while [ -e "$2/data/postmaster.pid" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
rm -rf "$2"`

// Server is a PostgreSQL server private to a test or a test binary,
// listening on 127.0.0.1 only, with fsync off: its data is thrown away.
type Server struct {
	// Port is the TCP port it listens on, on 127.0.0.1.
	Port int

	dir    string   // the temporary directory: data/, the log
	log    *os.File // the server's output, kept open to read after removal
	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process has ended
	reaper *exec.Cmd
	stop   *os.File // the reaper's standard input: closing it stops all

	stopOnce sync.Once
	stopped  atomic.Bool // its databases went with it
}

// NewServer starts a server for the test and stops it, removing its data,
// when the test ends. Most tests want Start, which shares one server per
// test binary; NewServer is for a test that stops the server itself.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// DSN returns the connection string of database on s as the superuser
// postgres, who needs no password.
func (s *Server) DSN(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// PID returns the process id of the server's postmaster, whose children
// are its backends, so that a benchmark can read the CPU time the
// database spends.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop stops the server and removes its data, waiting for both. Stopping
// a stopped server does nothing.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		s.stop.Close()
		ended := make(chan struct{})
		go func() {
			<-s.exited
			s.reaper.Wait()
			close(ended)
		}()
		select {
		case <-ended:
		case <-time.After(startTimeout):
			// The reaper is its own process group, the server another.
			syscall.Kill(-s.reaper.Process.Pid, syscall.SIGKILL)
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-ended
			os.RemoveAll(s.dir)
		}
		s.log.Close()
	})
}

// StartServer makes a data directory with initdb and starts postgres on
// a free port, then the reaper that will stop it. It is the entry point
// for a program outside `go test`, such as bench/run: the caller stops
// the server with Stop, and should the program die first, the reaper
// stops it and removes its data all the same.
func StartServer() (*Server, error) {
	bin, err := binaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(cred)
	if err != nil {
		return nil, err
	}
	s, err := startIn(dir, bin, cred)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// makeDir makes the server's temporary directory, owned by the user the
// server runs as.
func makeDir(cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", fmt.Errorf("making the server's directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("handing %s to the postgres user: %w", dir, err)
		}
	}
	return dir, nil
}

// startIn initializes dir/data and starts the server from it.
func startIn(dir, bin string, cred *syscall.Credential) (*Server, error) {
	if err := initdb(dir, bin, cred); err != nil {
		return nil, err
	}
	log, err := os.CreateTemp(dir, "log-")
	if err != nil {
		return nil, fmt.Errorf("making the server's log: %w", err)
	}
	s := &Server{dir: dir, log: log}
	for attempt := 1; ; attempt++ {
		err = s.run(bin, cred)
		if err == nil {
			break
		}
		if !errors.Is(err, errExited) || attempt == startAttempts {
			log.Close()
			return nil, err
		}
	}
	if err := s.startReaper(cred); err != nil {
		s.cmd.Process.Kill()
		<-s.exited
		log.Close()
		return nil, err
	}
	return s, nil
}

// initdb makes the data directory: trust for the superuser on loopback
// (see hba), UTF-8 with the C locale so that text sorts by bytes as Go's
// strings do, and no fsync of the new files.
func initdb(dir, bin string, cred *syscall.Credential) error {
	data := filepath.Join(dir, "data")
	cmd := exec.Command(filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir // the server's user may not enter the test's directory
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Rewriting keeps the file's owner, the server's user.
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	return nil
}

// errExited means the server ended before it accepted a connection.
var errExited = errors.New("postgres exited before accepting connections")

// run starts postgres on a free port and waits until it accepts
// connections.
func (s *Server) run(bin string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		// No Unix socket: it would go to /var/run/postgresql, outside
		// the test's directory and shared with any other server.
		"-c", "unix_socket_directories=",
		// The data is thrown away, so durability is only slowness.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		// Parallel tests each hold a pool and a listening connection.
		"-c", "max_connections=300")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Its own process group, so that an interrupt at the terminal
	// reaches the test binary and the reaper stops the server in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.cmd, s.Port, s.exited = cmd, port, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(s.exited)
	return s.waitReady()
}

// waitReady polls until the server accepts a connection, it exits, or
// startTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w:\n%s", errExited, s.output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.exited
			return fmt.Errorf("postgres did not accept connections within %v: %v\n%s", startTimeout, err, s.output())
		}
	}
}

// startReaper starts the reaper as the server's user with its standard
// input a pipe whose other end only this process holds.
func (s *Server) startReaper(cred *syscall.Credential) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("making the reaper's pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", reaper, "reaper", strconv.Itoa(s.cmd.Process.Pid), s.dir)
	cmd.Dir = s.dir
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the reaper: %w", err)
	}
	s.reaper, s.stop = cmd, w
	return nil
}

// output returns what the server printed, for an error.
func (s *Server) output() string {
	info, err := s.log.Stat()
	if err != nil {
		return err.Error()
	}
	const tail = 4 << 10
	off := max(info.Size()-tail, 0)
	buf := make([]byte, info.Size()-off)
	n, _ := s.log.ReadAt(buf, off)
	return string(buf[:n])
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
