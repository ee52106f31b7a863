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
	"slices"
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
	// ListTools is the number of tools that the list scenario's upstreams
	// serve in total, and that its one direct upstream serves alone.
	ListTools  int    `json:"list_tools"`
	ExtraTools int    `json:"extra_tools"`
	Era        string `json:"era"`
	Postgres   bool   `json:"postgres"` // measure mcpgate-postgres too
	// Only names the parts to run (see parts); all of them by default.
	Only []string `json:"only"`
	// IdleSessions is how many idle legacy sessions the footprint holds.
	IdleSessions int `json:"idle_sessions"`
	// ColdStarts is how many times the cold start starts each process.
	ColdStarts int `json:"cold_starts"`
	// ScaleConcurrency is the concurrency of the scale part's tools/call.
	ScaleConcurrency int `json:"scale_concurrency"`
	// ScaleCalls and ScaleLists are the catalogs that the scale part
	// measures tools/call and a cached tools/list over.
	ScaleCalls []catalog `json:"scale_calls"`
	ScaleLists []catalog `json:"scale_lists"`
	// Command is the command line that reproduces the run.
	Command string `json:"command"`
	root    string // the module's root directory
	keep    bool   // keep the temporary directory
	// readme is where to write the generated Performance section: the
	// README to rewrite, or "" for none.
	readme string
	// readmeFrom is a results JSON to render instead of running.
	readmeFrom string
}

// The parts of a run, which -only selects.
const (
	partCall      = "call"
	partList      = "list"
	partFootprint = "footprint"
	partColdStart = "coldstart"
	partScale     = "scale"
)

// parts lists every part in the order a run makes them.
var parts = []string{partCall, partList, partFootprint, partColdStart, partScale}

// runs reports whether the run includes part.
func (c config) runs(part string) bool {
	if part == partList && c.ListConcurrency == 0 {
		return false
	}
	return slices.Contains(c.Only, part)
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(2)
	}
	if cfg.root, err = moduleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.readmeFrom != "" {
		err = renderFrom(cfg)
	} else {
		err = runAll(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(1)
	}
}

// notInCommand are the flags that change where the report goes, not what
// is measured: the reproducing command leaves them out.
var notInCommand = []string{"keep", "readme", "readme-from", "readme-path"}

// parseFlags reads the command line.
func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench/run", flag.ContinueOnError)
	concs := fs.String("c", "64", "concurrent sessions for tools/call, or a comma-separated list such as 1,16,64")
	fs.DurationVar(&cfg.Duration, "d", 5*time.Second, "measured duration of each window")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up before each window")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds of interleaved targets; the report shows their median")
	fs.IntVar(&cfg.ListConcurrency, "list-c", 16, "concurrent sessions for the tools/list part and the scale part's lists (0 skips the list part)")
	fs.IntVar(&cfg.ListUpstreams, "list-n", 10, "upstreams that the aggregated tools/list covers")
	fs.IntVar(&cfg.ListTools, "list-tools", 500, "tools that the list part's upstreams serve in total, and its direct upstream alone")
	fs.IntVar(&cfg.ExtraTools, "extra-tools", 0, "extra trivial tools of the tools/call part's upstream")
	fs.StringVar(&cfg.Era, "era", load.EraLegacy, "the agents' protocol era: legacy (initialize, 2025-11-25) or modern (stateless 2026-07-28)")
	fs.BoolVar(&cfg.Postgres, "postgres", true, "measure mcpgate on storage postgres too (target mcpgate-postgres), on a private PostgreSQL server that the run starts and stops")
	only := fs.String("only", strings.Join(parts, ","), "the parts to run, comma-separated: "+strings.Join(parts, ","))
	fs.IntVar(&cfg.IdleSessions, "sessions", 1000, "idle legacy sessions that the footprint part holds")
	fs.IntVar(&cfg.ColdStarts, "starts", 7, "starts of each process that the coldstart part times")
	fs.IntVar(&cfg.ScaleConcurrency, "scale-c", 64, "concurrent sessions for the scale part's tools/call")
	scaleCalls := fs.String("scale-calls", "10x50,100x9,10x1000,100x100", "catalogs of the scale part's tools/call, connectors x tools each (each upstream serves at least its own "+strconv.Itoa(ownTools)+")")
	scaleLists := fs.String("scale-lists", "10x50,10x200,10x1000", "catalogs of the scale part's cached tools/list, connectors x tools each")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory with the Caddyfiles and logs")
	readme := fs.Bool("readme", false, "rewrite README.md's Performance section from this run")
	fs.StringVar(&cfg.readmeFrom, "readme-from", "", "rewrite README.md's Performance section from this results JSON, without running anything")
	readmePath := fs.String("readme-path", "README.md", "the README that -readme and -readme-from rewrite, relative to the module's root")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *readme || cfg.readmeFrom != "" {
		cfg.readme = *readmePath
	}
	cfg.Command = command(fs)
	return cfg, cfg.check(*concs, *only, *scaleCalls, *scaleLists)
}

// check parses the list flags and refuses settings that cannot run.
func (cfg *config) check(concs, only, scaleCalls, scaleLists string) error {
	var err error
	if cfg.Concurrency, err = parseInts(concs); err != nil {
		return fmt.Errorf("-c: %w", err)
	}
	if cfg.Rounds < 1 || cfg.Duration <= 0 {
		return fmt.Errorf("-rounds and -d must be positive")
	}
	if cfg.Era != load.EraLegacy && cfg.Era != load.EraModern {
		return fmt.Errorf("-era must be %s or %s", load.EraLegacy, load.EraModern)
	}
	if cfg.ListUpstreams < 1 || cfg.ListTools < cfg.ListUpstreams*ownTools {
		return fmt.Errorf("-list-n must be positive and -list-tools at least %d per upstream", ownTools)
	}
	if cfg.IdleSessions < 1 || cfg.ColdStarts < 1 || cfg.ScaleConcurrency < 1 {
		return fmt.Errorf("-sessions, -starts and -scale-c must be positive")
	}
	if cfg.Only, err = parseParts(only); err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	if cfg.ScaleCalls, err = parseCatalogs(scaleCalls); err != nil {
		return fmt.Errorf("-scale-calls: %w", err)
	}
	if cfg.ScaleLists, err = parseCatalogs(scaleLists); err != nil {
		return fmt.Errorf("-scale-lists: %w", err)
	}
	return nil
}

// command returns the command line that reproduces a run: go run with the
// flags that were set, apart from those that only say where output goes.
func command(fs *flag.FlagSet) string {
	out := []string{"go run ./bench/run"}
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(notInCommand, f.Name) {
			out = append(out, "-"+f.Name+"="+f.Value.String())
		}
	})
	return strings.Join(out, " ")
}

// parseParts parses -only: a comma-separated list of parts.
func parseParts(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(parts, f) {
			return nil, fmt.Errorf("%q is not a part (%s)", f, strings.Join(parts, ","))
		}
		out = append(out, f)
	}
	return out, nil
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

// runAll builds the binaries, runs the parts and reports.
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
	err = e.runParts(ctx, rep)
	if rep.empty() {
		return err
	}
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
	if err == nil && cfg.readme != "" {
		err = rep.rewriteReadme(filepath.Join(cfg.root, cfg.readme))
	}
	return err
}

// runParts runs the parts that cfg selects, in order, into rep, and stops
// at the first that fails.
func (e *env) runParts(ctx context.Context, rep *report) error {
	cfg := e.cfg
	steps := []struct {
		part string
		run  func(context.Context, *report) error
	}{
		{partCall, e.callPart},
		{partList, e.listPart},
		{partFootprint, e.footprintPart},
		{partColdStart, e.coldStartPart},
		{partScale, e.scalePart},
	}
	for _, s := range steps {
		if !cfg.runs(s.part) {
			continue
		}
		fmt.Fprintf(os.Stderr, "--- %s\n", s.part)
		if err := s.run(ctx, rep); err != nil {
			return fmt.Errorf("%s: %w", s.part, err)
		}
	}
	return nil
}

// renderFrom rewrites the README's section from a saved results JSON.
func renderFrom(cfg config) error {
	rep, err := loadReport(cfg.readmeFrom)
	if err != nil {
		return err
	}
	return rep.rewriteReadme(filepath.Join(cfg.root, cfg.readme))
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
