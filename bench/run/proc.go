package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process that the orchestrator owns and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // the file that holds its stderr (and stdout, unless piped)
	// ready and stopping are the length of the log when the process
	// became ready and when it was asked to stop: what it logged outside
	// that span, such as Caddy's startup and shutdown warnings, is not news.
	// stopping is -1 until stop is called.
	ready, stopping int64
	done            chan struct{} // closed when it has exited
	err             error         // its exit status, once done is closed
}

// launch starts cmd with its output in dir/<name>.log. The child is killed
// if the orchestrator dies without stopping it (Linux's parent-death
// signal), so that a crash leaves no server behind.
func launch(name, dir string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, log: filepath.Join(dir, name+".log"), done: make(chan struct{}), stopping: -1}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stderr = f
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the child to exit with SIGTERM and kills it if it has not
// within five seconds. It is safe to call more than once.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	p.stopping = p.logSize()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logSize returns the current length of the child's log.
func (p *proc) logSize() int64 {
	fi, err := os.Stat(p.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tail returns the last lines of the child's log, for an error message.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// failure wraps err with the child's state and the tail of its log.
func (p *proc) failure(err error) error {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Errorf("%s (%s): %w\n--- %s ---\n%s", p.name, state, err, p.log, p.tail())
}

// startUpstream starts the upstream command with n servers and returns it
// with their URLs, which it prints as JSON on its first line of output.
func startUpstream(ctx context.Context, bin, dir, name string, n, extraTools int) (*proc, []string, error) {
	cmd := exec.Command(bin, "-n", strconv.Itoa(n), "-extra-tools", strconv.Itoa(extraTools), "-exit-on-eof")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, nil, err
	}
	p, err := launch(name, dir, cmd)
	if err != nil {
		return nil, nil, err
	}
	urls, err := readURLs(ctx, stdout)
	if err != nil {
		p.stop()
		return nil, nil, p.failure(err)
	}
	return p, urls, nil
}

// readURLs reads the upstream command's announcement.
func readURLs(ctx context.Context, stdout interface{ Read([]byte) (int, error) }) ([]string, error) {
	type announcement struct {
		URLs []string `json:"urls"`
	}
	got := make(chan announcement, 1)
	go func() {
		var a announcement
		line, _ := bufio.NewReader(stdout).ReadBytes('\n')
		_ = json.Unmarshal(bytes.TrimSpace(line), &a)
		got <- a
	}()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case a := <-got:
		if len(a.URLs) == 0 {
			return nil, errors.New("the upstream command announced no URLs")
		}
		return a.URLs, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the upstream URLs: %w", ctx.Err())
	}
}

// startCaddy runs `caddy run` on a Caddyfile and waits until it accepts
// connections on addr. Caddy's data and config directories are kept under
// dir, so that the run leaves nothing in the user's home.
func startCaddy(ctx context.Context, bin, dir, name, caddyfile, addr string) (*proc, error) {
	conf := filepath.Join(dir, name+".caddyfile")
	if err := os.WriteFile(conf, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	p, err := launch(name, dir, caddyCommand(bin, conf, filepath.Join(dir, name+"-home")))
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, p, addr); err != nil {
		p.stop()
		return nil, p.failure(err)
	}
	p.ready = p.logSize()
	return p, nil
}

// caddyCommand returns `caddy run` on the Caddyfile conf, with its home,
// data and config directories under home.
func caddyCommand(bin, conf, home string) *exec.Cmd {
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	return cmd
}

// waitListening polls addr until it accepts a TCP connection, the process
// exits or 30 seconds pass.
func waitListening(ctx context.Context, p *proc, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			return c.Close()
		}
		select {
		case <-p.done:
			return errors.New("exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process could take it in between; on a bench machine that
// is rare enough.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
