package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds how long a Caddy process may take to serve after it
// starts. Alone it is ready in a second; race-built, four at once on a
// loaded 2-core machine beside other packages' tests take far longer.
const readyTimeout = 60 * time.Second

// stopTimeout is how long a process has to exit after SIGTERM before it
// is killed: Caddy's grace_period in the Caddyfiles is shorter.
const stopTimeout = 10 * time.Second

// logTail is how many lines of a process's log a failing test shows.
const logTail = 40

// Process is a Caddy process that the test started and stops.
type Process struct {
	// Name names the process in logs and failures: "a", "b", "c" or "lb".
	Name string
	// URL is its site, http://127.0.0.1:PORT.
	URL string
	// Admin is its admin endpoint, http://127.0.0.1:PORT.
	Admin string

	cmd  *exec.Cmd
	log  string        // the file holding its stdout and stderr
	done chan struct{} // closed once it has exited and been reaped
}

// startProcess runs `caddy run` on caddyfile with env added to its
// environment and its data, config and home directories under dir. It is
// stopped when the test ends, and its log's tail is shown if the test
// failed.
func startProcess(t testing.TB, bin, dir, name string, ports Ports, caddyfile string, env []string) *Process {
	t.Helper()
	p := &Process{
		Name:  name,
		URL:   fmt.Sprintf("http://127.0.0.1:%d", ports.HTTP),
		Admin: fmt.Sprintf("http://127.0.0.1:%d", ports.Admin),
		log:   filepath.Join(dir, name+".log"),
		done:  make(chan struct{}),
	}
	for _, port := range []int{ports.HTTP, ports.Admin} {
		if err := portFree(port); err != nil {
			t.Fatalf("cluster: instance %s: %v", name, err)
		}
	}
	conf := filepath.Join(dir, name+".caddyfile")
	if err := os.WriteFile(conf, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(), homeEnv(filepath.Join(dir, name+"-home"))...)
	p.cmd.Env = append(p.cmd.Env, env...)
	if err := p.start(); err != nil {
		t.Fatalf("cluster: starting instance %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Stop()
		if p.raced() {
			t.Errorf("cluster: instance %s's race detector reported a data race (%s)", name, p.log)
		}
		if t.Failed() {
			t.Logf("cluster: the last lines of instance %s's log (%s):\n%s", name, p.log, p.Tail(logTail))
		}
	})
	return p
}

// homeEnv keeps Caddy's data, config and home directories under home, so
// that the processes share nothing on disk and leave nothing behind.
func homeEnv(home string) []string {
	return []string{
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
	}
}

// portFree fails when something already listens on the fixed port: the
// test would otherwise talk to a stranger, or fail later and obscurely.
func portFree(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port %d is taken (another run of this package?): %w", port, err)
	}
	return ln.Close()
}

// start starts the process with its output in its log. The process gets
// its own group, so that a kill reaches everything it runs, and the
// parent-death signal, so that a crashed test binary leaves no Caddy
// behind holding the fixed ports.
func (p *Process) start() error {
	f, err := os.Create(p.log)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() {
		_ = p.cmd.Wait() // its status shows in Exited's caller's log tail
		close(p.done)
	}()
	return nil
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill kills the process with SIGKILL, as a crash or an OOM killer would,
// and returns once it has been reaped: by then the kernel has closed its
// sockets.
func (p *Process) Kill() {
	if p.Exited() {
		return // its group id may belong to another process by now
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to exit with SIGTERM and kills it if it has not
// within stopTimeout. It is safe to call after Kill and more than once.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.Kill()
	}
}

// raced reports whether the process, built with the race detector,
// reported a data race in its log.
func (p *Process) raced() bool {
	b, _ := os.ReadFile(p.log) // a log that cannot be read has shown no race
	return bytes.Contains(b, []byte("WARNING: DATA RACE"))
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitReady polls the process's site until it lists alice's connectors,
// failing the test if the process exits or readyTimeout passes first.
// Through the balancer that takes an instance behind it as well.
func (p *Process) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last error
	for !p.Exited() && time.Now().Before(deadline) {
		if last = p.probe(); last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p.Exited() {
		last = errors.New("it exited")
	}
	t.Fatalf("cluster: instance %s is not ready: %v\n%s", p.Name, last, p.Tail(logTail))
}

// probe asks for alice's connectors once.
func (p *Process) probe() error {
	resp, err := Send(http.MethodGet, p.URL+"/connectors", "alice", nil, nil)
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("GET /connectors answered %d: %s", resp.Status, resp.Body)
	}
	return nil
}
