package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// The cold start's bounds: how long a start may take before it counts as
// failed, and how often the probe tries the first call meanwhile.
const (
	coldStartLimit = 20 * time.Second
	coldStartPoll  = 5 * time.Millisecond
)

// quickstart is the Caddyfile the cold start times, relative to the
// module's root.
const quickstart = "examples/quickstart/Caddyfile"

// coldStart holds the times from the exec of a Caddy process to its first
// successful tools/call: mcpgate on the quickstart config, and the same
// binary as a reverse_proxy to the same upstream.
type coldStart struct {
	Gateway []time.Duration `json:"gateway_ns"`
	Proxy   []time.Duration `json:"proxy_ns"`
}

// coldStartPart starts an upstream, then ColdStarts times each of mcpgate
// on the quickstart Caddyfile (its placeholders pointed at free ports and
// at the upstream) and a reverse_proxy, alternating, each with a fresh data
// directory, and times each to its first successful tools/call.
func (e *env) coldStartPart(ctx context.Context, rep *report) error {
	up, urls, err := startUpstream(ctx, e.upstream, e.dir, "upstream-coldstart", 1, 0)
	if err != nil {
		return err
	}
	defer up.stop()
	upstreamURL, err := url.Parse(urls[0])
	if err != nil {
		return err
	}
	cs := &coldStart{}
	rep.ColdStart = cs
	for i := range e.cfg.ColdStarts {
		d, err := e.startGatewayCold(ctx, i, urls[0])
		if err != nil {
			return err
		}
		cs.Gateway = append(cs.Gateway, d)
		p, err := e.startProxyCold(ctx, i, upstreamURL)
		if err != nil {
			return err
		}
		cs.Proxy = append(cs.Proxy, p)
		fmt.Fprintf(os.Stderr, "coldstart %d  mcpgate %6.1f ms  reverse_proxy %6.1f ms\n", i+1, ms(d), ms(p))
	}
	return nil
}

// startGatewayCold times the i-th start of mcpgate on the quickstart
// Caddyfile, in front of upstreamURL.
func (e *env) startGatewayCold(ctx context.Context, i int, upstreamURL string) (time.Duration, error) {
	addr, admin, err := twoAddrs()
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("coldstart-mcpgate-%d", i+1)
	cmd := caddyCommand(e.caddy, filepath.Join(e.cfg.root, quickstart), filepath.Join(e.dir, name+"-home"))
	cmd.Env = append(cmd.Env, "MCPGATE_ADDR="+addr, "MCPGATE_ADMIN="+admin, "DEMO_URL="+upstreamURL)
	return e.timeStart(ctx, name, cmd, target{url: "http://" + addr + "/mcp", tool: "demo_echo"})
}

// startProxyCold times the i-th start of the reverse_proxy baseline.
func (e *env) startProxyCold(ctx context.Context, i int, upstream *url.URL) (time.Duration, error) {
	addr, admin, err := twoAddrs()
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("coldstart-reverse_proxy-%d", i+1)
	conf := filepath.Join(e.dir, name+".caddyfile")
	if err := os.WriteFile(conf, []byte(coldProxyCaddyfile(addr, admin, upstream.Host)), 0o600); err != nil {
		return 0, err
	}
	cmd := caddyCommand(e.caddy, conf, filepath.Join(e.dir, name+"-home"))
	return e.timeStart(ctx, name, cmd, target{url: "http://" + addr + upstream.Path, tool: "echo"})
}

// twoAddrs returns two free loopback addresses: the server's and the
// admin endpoint's.
func twoAddrs() (string, string, error) {
	a, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	b, err := freeAddr()
	return a, b, err
}

// timeStart execs cmd and returns the time until a session opened on t
// got a successful tools/call answer, polling every coldStartPoll. The
// process is stopped before it returns.
func (e *env) timeStart(ctx context.Context, name string, cmd *exec.Cmd, t target) (time.Duration, error) {
	start := time.Now()
	p, err := launch(name, e.dir, cmd)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(ctx, coldStartLimit)
	defer cancel()
	for {
		done, err := firstCall(ctx, t)
		if err == nil {
			return done.Sub(start), nil
		}
		select {
		case <-p.done:
			return 0, p.failure(errors.New("exited before its first tools/call"))
		case <-ctx.Done():
			return 0, p.failure(fmt.Errorf("no successful tools/call within %v: %w", coldStartLimit, err))
		case <-time.After(coldStartPoll):
		}
	}
}

// firstCall opens a legacy session on t and calls its echo tool once. It
// returns when the answer came, before the session is closed.
func firstCall(ctx context.Context, t target) (time.Time, error) {
	pool, err := load.Dial(ctx, load.Options{URL: t.url, Tool: t.tool, Timeout: 5 * time.Second})
	if err != nil {
		return time.Time{}, err
	}
	defer pool.Close()
	if err := pool.Once(ctx); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}
