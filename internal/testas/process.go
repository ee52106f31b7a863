package testas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Node.js may take to print its issuer. The
// start (loading oidc-provider's modules, then listening) is quick alone,
// but with the race-enabled test packages and the conformance suite's Node
// processes running beside it on two cores, 20 s has run out.
const startTimeout = 60 * time.Second

// installHint is what to run when the npm dependencies are missing.
const installHint = "run: npm ci --prefix internal/testas --no-audit --no-fund"

// startNode runs server.mjs with config, waits until it prints its issuer
// and returns that and the URL it listens on. The process group is killed
// when the test ends.
func startNode(t testing.TB, config serverConfig) (issuer, listen string) {
	t.Helper()
	dir := packageDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		t.Fatalf("testas: oidc-provider is not installed in %s; %s", dir, installHint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("testas: Node.js is required: %v", err)
	}
	cfg, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	p := &nodeProcess{drained: make(chan struct{})}
	p.cmd = exec.Command(node, "server.mjs", "0")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "TESTAS_CONFIG="+string(cfg))
	// Its own process group, so that cleanup kills everything it spawned;
	// the parent-death signal stops it when the test binary crashes.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = &p.stderr
	issuer, listen, err = p.start()
	if err != nil {
		t.Fatalf("testas: starting oidc-provider: %v\n%s", err, p.stderr.String())
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("testas: oidc-provider stderr:\n%s", p.stderr.String())
		}
	})
	return issuer, listen
}

// packageDir returns this package's directory, where server.mjs is, from
// whichever package's tests call Start.
func packageDir(t testing.TB) string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Dir(file)
	}
	// Built with -trimpath: the source path is gone, but the test runs in
	// its package's directory, somewhere inside the module.
	for dir, err := os.Getwd(); err == nil && dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "internal", "testas")
		}
	}
	t.Fatal("testas: cannot locate the package directory")
	return ""
}

// nodeProcess is the running server.mjs.
type nodeProcess struct {
	cmd     *exec.Cmd
	stderr  syncBuffer
	drained chan struct{} // closed when stdout has reached EOF
}

// start starts the process and returns the issuer and the listening URL
// from its first stdout line. On failure the process has been stopped.
func (p *nodeProcess) start() (issuer, listen string, err error) {
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	if err := p.cmd.Start(); err != nil {
		return "", "", err
	}
	first := make(chan string, 1)
	go p.readStdout(stdout, first)
	select {
	case line := <-first:
		if line == "" {
			p.stop()
			return "", "", errors.New("it exited before printing its issuer")
		}
		var ready struct {
			Issuer string `json:"issuer"`
			Listen string `json:"listen"`
		}
		if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Issuer == "" || ready.Listen == "" {
			p.stop()
			return "", "", fmt.Errorf("unexpected first line %q", line)
		}
		return ready.Issuer, ready.Listen, nil
	case <-time.After(startTimeout):
		p.stop()
		return "", "", fmt.Errorf("no issuer printed within %v", startTimeout)
	}
}

// readStdout sends the first line to first (an empty one at EOF) and keeps
// the rest with stderr, so that the pipe never fills up.
func (p *nodeProcess) readStdout(stdout io.Reader, first chan<- string) {
	defer close(p.drained)
	r := bufio.NewReader(stdout)
	line, _ := r.ReadString('\n')
	first <- line
	_, _ = io.Copy(&p.stderr, r)
}

// stop kills the process group and reaps the process.
func (p *nodeProcess) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	// Wait closes stdout, so it must come after the reader is done.
	<-p.drained
	_ = p.cmd.Wait()
}

// syncBuffer is a bytes.Buffer that the process and the test may use at
// once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
