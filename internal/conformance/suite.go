package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The requirement sets the suite knows: the scenarios a server must pass
// to conform to a revision, frozen when it shipped.
const (
	Requirements20251125 = "2025-11-25"
	Requirements20260728 = "2026-07-28"
)

// InstallCommand installs the suite and the Node 22 it runs on, from the
// repository's top directory (scripts/test runs it).
const InstallCommand = "npm ci --prefix internal/conformance --no-audit --no-fund"

// suiteTimeout bounds a whole run; each scenario has scenarioTimeout.
const suiteTimeout = 5 * time.Minute

// RunOptions says what to run.
type RunOptions struct {
	// URL is the MCP endpoint under test. Required.
	URL string
	// Requirements is the revision whose requirement set runs, e.g.
	// Requirements20260728. Required.
	Requirements string
	// Scenario, when set, runs only this scenario, at the Requirements
	// revision.
	Scenario string
	// Dir receives the suite's results and its output (suite.log). Required;
	// a test passes t.TempDir().
	Dir string
}

// Result is the outcome of one scenario.
type Result struct {
	// Passed reports that no check failed.
	Passed bool
	// Scored reports that the revision requires the scenario; otherwise
	// NotScored says why it runs anyway (extension, pending, ...).
	Scored    bool
	NotScored string
	// Failures are the checks that failed, Warnings those that failed a
	// SHOULD.
	Failures, Warnings []Check
}

// Check is one failed or warned check of a scenario.
type Check struct {
	ID, Message string
}

// Run runs the suite's server scenarios against opts.URL and returns their
// results by scenario name. It fails, naming InstallCommand, when the suite
// is not installed.
func Run(ctx context.Context, opts RunOptions) (map[string]Result, error) {
	return runIn(ctx, packageDir(), opts)
}

// runIn is Run with the suite installed under dir.
func runIn(ctx context.Context, dir string, opts RunOptions) (map[string]Result, error) {
	node := filepath.Join(dir, "node_modules", ".bin", "node")
	cli := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	for _, p := range []string{node, cli} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("conformance suite not installed (%w): run %q in the repository's top directory", err, InstallCommand)
		}
	}
	scored, notScored, err := requirements(filepath.Join(filepath.Dir(cli), "..", "requirements", opts.Requirements+".yaml"))
	if err != nil {
		return nil, err
	}
	if err := runSuite(ctx, node, cli, opts); err != nil {
		return nil, err
	}
	results, err := readResults(opts.Dir)
	if err != nil {
		return nil, err
	}
	for name, r := range results {
		r.Scored = scored[name]
		r.NotScored = notScored[name]
		results[name] = r
	}
	return results, nil
}

// packageDir is this package's source directory, where the suite is
// installed, whichever package's test calls Run.
func packageDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// scenarioTimeout bounds one scenario, which the suite otherwise gives
// 30 s. That bound is for a server that never answers; on a loaded
// 2-core machine, with the rest of the tests beside it, a scenario that
// asks the agent a question (sampling, elicitation) has been seen to
// outlast 30 s while nothing was wrong.
const scenarioTimeout = 2 * time.Minute

// runSuite runs the suite's CLI on the pinned Node, with its output in
// opts.Dir/suite.log. A run whose scenarios fail exits non-zero; that is
// read from the results, so only a run that left none is an error.
func runSuite(ctx context.Context, node, cli string, opts RunOptions) error {
	ctx, cancel := context.WithTimeout(ctx, suiteTimeout)
	defer cancel()
	args := []string{cli, "server", "--url", opts.URL, "-o", opts.Dir, "--timeout", strconv.Itoa(int(scenarioTimeout.Milliseconds()))}
	if opts.Scenario != "" {
		args = append(args, "--scenario", opts.Scenario, "--spec-version", opts.Requirements)
	} else {
		args = append(args, "--requirements", opts.Requirements)
	}
	logPath := filepath.Join(opts.Dir, "suite.log")
	out, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating the suite's log: %w", err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, node, args...)
	// The suite may start Node itself: the pinned Node 22 comes first
	// (Debian's is 20, too old for it).
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(node)+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("conformance suite: %w (output in %s)", ctx.Err(), logPath)
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return fmt.Errorf("running the conformance suite: %w", runErr)
	}
	return nil
}

// resultDir matches a scenario's result directory,
// server-<scenario>-<ISO timestamp with dashes>.
var resultDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$`)

// readResults reads each scenario's checks.json under dir.
func readResults(dir string) (map[string]Result, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the suite's results: %w", err)
	}
	results := make(map[string]Result)
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		r, err := readChecks(filepath.Join(dir, e.Name(), "checks.json"))
		if err != nil {
			return nil, err
		}
		results[m[1]] = r
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("the conformance suite left no results in %s: see suite.log there", dir)
	}
	return results, nil
}

// readChecks reads one scenario's checks. A scenario passes when none of
// its checks has status FAILURE, as the suite's own summary counts.
func readChecks(path string) (Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("reading scenario checks: %w", err)
	}
	var checks []struct {
		ID, Status, ErrorMessage string
	}
	if err := json.Unmarshal(b, &checks); err != nil {
		return Result{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	var r Result
	for _, c := range checks {
		switch c.Status {
		case "FAILURE":
			r.Failures = append(r.Failures, Check{ID: c.ID, Message: c.ErrorMessage})
		case "WARNING":
			r.Warnings = append(r.Warnings, Check{ID: c.ID, Message: c.ErrorMessage})
		}
	}
	r.Passed = len(r.Failures) == 0
	return r, nil
}

// requirements reads a requirement set: the server scenarios it scores,
// and those it runs unscored, with the reason.
func requirements(path string) (scored map[string]bool, notScored map[string]string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the requirement set: %w", err)
	}
	var set struct {
		Server    []string `yaml:"server"`
		NotScored []struct {
			Scenario, Leg, Reason string
		} `yaml:"not_scored"`
	}
	if err := yaml.Unmarshal(b, &set); err != nil {
		return nil, nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	scored = make(map[string]bool)
	for _, s := range set.Server {
		scored[s] = true
	}
	notScored = make(map[string]string)
	for _, n := range set.NotScored {
		if n.Leg == "server" {
			notScored[n.Scenario] = strings.TrimSpace(n.Reason)
		}
	}
	return scored, notScored, nil
}
