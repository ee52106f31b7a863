// Command run is the gateway's performance harness. In one run it builds
// Caddy with mcpgate, starts the upstream MCP servers in a process of
// their own, and measures four targets against the same upstream: the
// upstream directly, a plain Caddy reverse_proxy, mcpgate on its default
// Badger store, and the same mcpgate on storage postgres, against a
// private PostgreSQL server that the run starts (initdb into a temporary
// directory, 127.0.0.1, a free port) and stops. It then
// measures an aggregated tools/list over ten upstreams, served from the
// gateway's cache, against a tools/list sent directly to one upstream.
//
// It prints a Markdown report and writes the same data as JSON to
// bench/results/<timestamp>.json.
//
//	go run ./bench/run -c 64 -d 10s -rounds 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// config is the orchestrator's settings, from its flags.
type config struct {
	Concurrency     []int         `json:"concurrency"`
	Duration        time.Duration `json:"duration_ns"`
	Warmup          time.Duration `json:"warmup_ns"`
	Rounds          int           `json:"rounds"`
	ListConcurrency int           `json:"list_concurrency"`
	ListUpstreams   int           `json:"list_upstreams"`
	ExtraTools      int           `json:"extra_tools"`
	Era             string        `json:"era"`
	Postgres        bool          `json:"postgres"` // measure mcpgate-postgres too
	root            string        // the module's root directory
	keep            bool          // keep the temporary directory
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line.
func parseFlags() (config, error) {
	var cfg config
	concs := flag.String("c", "64", "concurrent sessions for tools/call, or a comma-separated list such as 1,16,64")
	flag.DurationVar(&cfg.Duration, "d", 10*time.Second, "measured duration of each window")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up before each window")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "rounds of interleaved targets; the report shows their median")
	flag.IntVar(&cfg.ListConcurrency, "list-c", 16, "concurrent sessions for the tools/list scenario (0 skips it)")
	flag.IntVar(&cfg.ListUpstreams, "list-n", 10, "upstreams that the aggregated tools/list covers")
	flag.IntVar(&cfg.ExtraTools, "extra-tools", 0, "extra trivial tools per upstream, to make tools/list larger")
	flag.StringVar(&cfg.Era, "era", load.EraLegacy, "the agents' protocol era: legacy (initialize, 2025-11-25) or modern (stateless 2026-07-28)")
	flag.BoolVar(&cfg.Postgres, "postgres", true, "measure mcpgate on storage postgres too (target mcpgate-postgres), on a private PostgreSQL server that the run starts and stops")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory with the Caddyfiles and logs")
	flag.Parse()
	var err error
	if cfg.Concurrency, err = parseInts(*concs); err != nil {
		return cfg, fmt.Errorf("-c: %w", err)
	}
	if cfg.Rounds < 1 || cfg.Duration <= 0 {
		return cfg, fmt.Errorf("-rounds and -d must be positive")
	}
	if cfg.Era != load.EraLegacy && cfg.Era != load.EraModern {
		return cfg, fmt.Errorf("-era must be %s or %s", load.EraLegacy, load.EraModern)
	}
	cfg.root, err = moduleRoot()
	return cfg, err
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// moduleRoot returns the directory of the go.mod that the go command
// uses from here.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run from inside the caddy-mcpgate module")
	}
	return filepath.Dir(gomod), nil
}

// env is what the scenarios share: the built binaries and where to keep
// their files.
type env struct {
	cfg         config
	dir         string
	caddy       string
	upstream    string
	tick        time.Duration
	progressLog func(sample)
	caddies     []*proc // every Caddy started, for their logs
}

// runAll builds the binaries, runs both scenarios and reports.
func runAll(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "mcpgate-bench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{cfg: cfg, dir: dir, tick: clockTick(), progressLog: progress}
	if err := e.build(ctx); err != nil {
		return err
	}
	rep := newReport(cfg)
	samples, err := e.callScenario(ctx)
	rep.Samples = append(rep.Samples, samples...)
	if err == nil && cfg.ListConcurrency > 0 {
		samples, err = e.listScenario(ctx)
		rep.Samples = append(rep.Samples, samples...)
	}
	if len(rep.Samples) > 0 {
		// A run that failed half way still reports what it measured.
		for _, p := range e.caddies {
			rep.Logs = append(rep.Logs, summarizeLog(p))
		}
		rep.finish()
		rep.writeMarkdown(os.Stdout)
		path, serr := rep.save(filepath.Join(cfg.root, "bench", "results"))
		if serr != nil {
			return errors.Join(err, serr)
		}
		fmt.Println("\nJSON:", path)
	}
	return err
}

// build compiles Caddy with mcpgate and the upstream command.
func (e *env) build(ctx context.Context) error {
	e.caddy = filepath.Join(e.dir, "caddy")
	e.upstream = filepath.Join(e.dir, "upstream")
	for bin, pkg := range map[string]string{e.caddy: "./cmd/caddy", e.upstream: "./bench/upstream"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = e.cfg.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}

// progress prints one line per measured window on stderr.
func progress(s sample) {
	fmt.Fprintf(os.Stderr, "%-4s round %d  c=%-3d %-16s %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  server CPU %5.0f µs/req\n",
		s.Scenario, s.Round, s.Concurrency, s.Target, s.RPS, ms(s.Result.Latency.P50), ms(s.Result.Latency.P99),
		s.Result.Errors, s.ServerCPU)
}
