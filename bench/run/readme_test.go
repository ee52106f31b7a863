package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// TestParseFlagsCommand: the reproducing command holds the flags that were
// set, in a fixed order, and none of those that only say where output
// goes; -readme and -readme-from name the README to rewrite.
func TestParseFlagsCommand(t *testing.T) {
	cfg, err := parseFlags([]string{"-rounds", "1", "-d", "3s", "-readme", "-keep", "-only", "call,scale", "-postgres=false"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "go run ./bench/run -d=3s -only=call,scale -postgres=false -rounds=1"; cfg.Command != want {
		t.Errorf("command %q, want %q", cfg.Command, want)
	}
	if cfg.readme != "README.md" || cfg.readmeFrom != "" {
		t.Errorf("readme %q from %q", cfg.readme, cfg.readmeFrom)
	}
	if cfg.runs(partList) || cfg.runs(partFootprint) || !cfg.runs(partCall) || !cfg.runs(partScale) {
		t.Errorf("-only call,scale runs %v", cfg.Only)
	}
	cfg, err = parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Command != "go run ./bench/run" || cfg.readme != "" || len(cfg.Only) != len(parts) || cfg.Duration != 5*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	if want := []catalog{{10, 50}, {100, 9}, {10, 1000}, {100, 100}}; !equalCatalogs(cfg.ScaleCalls, want) {
		t.Errorf("scale calls %v, want %v", cfg.ScaleCalls, want)
	}
	if cfg, _ := parseFlags([]string{"-readme-from", "x.json"}); cfg.readme != "README.md" || cfg.readmeFrom != "x.json" {
		t.Errorf("-readme-from: readme %q from %q", cfg.readme, cfg.readmeFrom)
	}
	if cfg, _ := parseFlags([]string{"-list-c", "0"}); cfg.runs(partList) {
		t.Error("-list-c 0 still runs the list part")
	}
}

// TestParseFlagsRefused: settings that cannot run are refused with the
// flag's name.
func TestParseFlagsRefused(t *testing.T) {
	for args, want := range map[string]string{
		"-only call,lists":    "-only",
		"-scale-calls 100x5":  "at least its own 9 tools",
		"-scale-lists 10by50": "-scale-lists",
		"-list-tools 50":      "-list-tools",
		"-sessions 0":         "-sessions",
		"-c 0":                "-c",
		"extra":               "unexpected arguments",
	} {
		_, err := parseFlags(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %q", args, err, want)
		}
	}
}

// equalCatalogs reports whether a and b are the same catalogs in order.
func equalCatalogs(a, b []catalog) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSplice: the section replaces what lies between the markers, markers
// included, and leaves the rest of the README byte for byte; a README
// without exactly one pair in order is refused, not half rewritten.
func TestSplice(t *testing.T) {
	doc := "# T\n\n## Performance\n\n" + beginMarker + "\nold\n" + endMarker + "\n\n## After\n"
	section := beginMarker + "\nnew\n" + endMarker
	out, err := splice([]byte(doc), []byte(section))
	if err != nil {
		t.Fatal(err)
	}
	if want := "# T\n\n## Performance\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\n## After\n"; string(out) != want {
		t.Errorf("spliced:\n%s\nwant:\n%s", out, want)
	}
	again, err := splice(out, []byte(section))
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("a second splice changed the README: %v\n%s", err, again)
	}
	for name, bad := range map[string]string{
		"no markers":   "# T\n",
		"no end":       beginMarker + "\n",
		"two begins":   beginMarker + beginMarker + endMarker,
		"end first":    endMarker + "\n" + beginMarker,
		"two sections": beginMarker + endMarker + beginMarker + endMarker,
	} {
		if _, err := splice([]byte(bad), []byte(section)); err == nil {
			t.Errorf("%s: spliced", name)
		}
	}
}

// fullReport is a finished report of every part, with figures chosen so
// that some goals pass and some fail.
func fullReport(t *testing.T) *report {
	t.Helper()
	cfg, err := parseFlags([]string{"-d", "3s", "-rounds", "1"})
	if err != nil {
		t.Fatal(err)
	}
	r := newReport(cfg)
	r.Host = host{GoVersion: "go1.test", NumCPU: 2, LoadAvgStart: "1.00 2.00 3.00"}
	at := func(scenario, target string, c int, rps, cpu float64) sample {
		return sample{Scenario: scenario, Target: target, Concurrency: c, Round: 1,
			Result: load.Result{Requests: int64(rps), Latency: load.Latency{P50: time.Millisecond, P99: 3 * time.Millisecond}},
			RPS:    rps, ServerCPU: cpu}
	}
	r.Samples = []sample{
		at("call", "direct", 64, 9000, 0),
		at("call", "reverse_proxy", 64, 3000, 200),
		at("call", "mcpgate", 64, 3900, 130),
		at("list", "direct", 16, 1000, 0),
		at("list", "mcpgate", 16, 3200, 90),
		at("scale-call", "10x50", 64, 4000, 120),
		at("scale-call", "100x9", 64, 3900, 122),
		at("scale-call", "10x1000", 64, 3500, 140), // 0.875: fails
		at("scale-call", "100x100", 64, 3800, 125),
		at("scale-list", "10x50", 16, 2000, 100),
		at("scale-list", "10x200", 16, 600, 330),
		at("scale-list", "10x1000", 16, 120, 1600),
	}
	r.Answers = []answer{
		{Catalog: "list-direct", Bytes: 100 << 10, Tools: 500, Pages: 1},
		{Catalog: "list-mcpgate", Bytes: 110 << 10, Tools: 501, Pages: 2},
		{Catalog: "10x50", Bytes: 100 << 10, Tools: 501, Pages: 2},
		{Catalog: "10x200", Bytes: 400 << 10, Tools: 2001, Pages: 5},
		{Catalog: "10x1000", Bytes: 2000 << 10, Tools: 10001, Pages: 21},
	}
	r.Footprint = &footprint{Sessions: 1000, GatewayRest: 40 << 20, GatewayIdle: 60 << 20, GatewayIdleAnon: 12 << 20, GatewayConnected: 90 << 20, GatewayPeak: 95 << 20,
		ProxyRest: 30 << 20, ProxyIdle: 50 << 20, ProxyIdleAnon: 8 << 20, ProxyConnected: 80 << 20, ProxyPeak: 85 << 20}
	r.ColdStart = &coldStart{
		Gateway: []time.Duration{300 * time.Millisecond, 200 * time.Millisecond, 210 * time.Millisecond},
		Proxy:   []time.Duration{60 * time.Millisecond, 50 * time.Millisecond, 55 * time.Millisecond},
	}
	r.finish()
	r.Host.LoadAvgEnd = "4.00 5.00 6.00"
	r.path = "/m/bench/results/20261207-120000.json"
	return r
}

// TestGoals: every figure's goal is judged against the target,
// from ratios within the run.
func TestGoals(t *testing.T) {
	r := fullReport(t)
	for _, want := range []struct {
		prefix   string
		figure   int
		measured float64
		pass     bool
	}{
		{"aggregated tools/list (10 upstreams × 50 tools, cached) / one upstream with 500 tools, lists/s, c=16", 1, 3.2, true},
		{"mcpgate/reverse_proxy tools/call req/s, c=64", 2, 1.3, true},
		{"mcpgate/reverse_proxy CPU per tools/call, c=64", 2, 0.65, true},
		{"mcpgate RSS MiB with 1000 idle legacy sessions", 3, 60, true},
		{"cold start to the first tools/call, quickstart, median of 3, ms", 4, 210, true},
		{"tools/call req/s, 100x9 / 10x50, c=64", 5, 0.975, true},
		{"tools/call req/s, 10x1000 / 10x50, c=64", 5, 0.875, false},
		{"tools/call req/s, 100x100 / 10x50, c=64", 5, 0.95, true},
		// 1600 µs for 2000 KB over 100 µs for 100 KB: 0.8 µs/KB against 1.
		{"cached tools/list CPU per KB, 10x1000 / 10x50, c=16", 5, 0.8, true},
	} {
		g, ok := goalOf(r, want.prefix)
		if !ok || g.Figure != want.figure || g.Pass != want.pass || g.Measured < want.measured-0.001 || g.Measured > want.measured+0.001 {
			t.Errorf("%s: %+v (found %v), want figure %d, %.3f, pass %v", want.prefix, g, ok, want.figure, want.measured, want.pass)
		}
	}
	if _, ok := goalOf(r, "cached tools/list CPU per KB, 10x200"); ok {
		t.Error("the intermediate catalog is judged; only the largest is")
	}
	if v := ratioOf(r, "cached tools/list CPU per KB, 10x200 / 10x50, c=16"); v < 0.824 || v > 0.826 {
		t.Errorf("10x200 per-KB ratio %v, want 330/400 over 100/100 = 0.825", v)
	}
}

// TestGoalsFail: the figures fail past the targets: a list at
// 2.9×, calls at 1.2× and 0.75× the CPU, 65 MiB, a median start of 250 ms.
func TestGoalsFail(t *testing.T) {
	r := fullReport(t)
	r.Samples[4].RPS = 2900
	r.Samples[2].RPS, r.Samples[2].ServerCPU = 3600, 150
	r.Footprint.GatewayIdle = 65 << 20
	r.ColdStart.Gateway[2] = 250 * time.Millisecond
	r.Goals, r.Ratios, r.Summaries = nil, nil, nil
	r.finish()
	for _, prefix := range []string{"aggregated tools/list", "mcpgate/reverse_proxy tools/call req/s", "mcpgate/reverse_proxy CPU per",
		"mcpgate RSS", "cold start"} {
		if g, ok := goalOf(r, prefix); !ok || g.Pass {
			t.Errorf("%s: %+v (found %v), want a failure", prefix, g, ok)
		}
	}
}

// TestRenderReadme: the section holds the reproducing command, the machine
// line, the goals and every part's table, with the template's prose, and
// nothing the template failed to fill.
func TestRenderReadme(t *testing.T) {
	r := fullReport(t)
	var b bytes.Buffer
	if err := r.renderReadme(&b, "/m/README.md"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		beginMarker + "\n<!-- Generated by bench/run from bench/results/20261207-120000.json.",
		"```sh\ngo run ./bench/run -d=3s -rounds=1\n```",
		"2 CPU cores, go1.test, load average 1.00 2.00 3.00 at the start and 4.00 5.00 6.00 at the end",
		"| 1 | aggregated tools/list (10 upstreams × 50 tools, cached) / one upstream with 500 tools, lists/s, c=16 | 3.20 | ≥ 3.00 | PASS |",
		"| 5 | tools/call req/s, 10x1000 / 10x50, c=64 | 0.88 | ≥ 0.90 | FAIL |",
		"### 1. Aggregated tools/list", "| mcpgate | 501 | 2 | 110 | 3200 |",
		"### 2. tools/call, 64 sessions", "| mcpgate | 3900 | 1.00 | 3.00 | 130 | — | 0.43× | 1.30× | 0.65× |",
		"### 3. Footprint", "| mcpgate | 40.0 | 60.0 | 12.0 | 20.5 | 90.0 | 51.2 | 95.0 |",
		"| mcpgate ÷ reverse_proxy | 1.33× | 1.20× | 1.50× | | 1.12× | | |",
		"### 4. Cold start", "| mcpgate, quickstart Caddyfile | 210 | 200 | 300 |", "| mcpgate ÷ reverse_proxy | 3.82× | | |",
		"### 5. Scale of the catalog", "| 100 × 9 | 900 | 3900 | 1.00 | 122 | 0.97× |",
		"| 10 × 1000 | 10001 | 21 | 2000 | 120 | 1600 | 0.80 | 0.80× |",
		"\n" + endMarker,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the section lacks %q:\n%s", want, md)
		}
	}
	for _, bad := range []string{"<no value>", "\n\n\n", "%!"} {
		if strings.Contains(md, bad) {
			t.Errorf("the section holds %q:\n%s", bad, md)
		}
	}
}

// TestRenderReadmeParts: a run of some parts renders their sections only.
func TestRenderReadmeParts(t *testing.T) {
	r := finished(callSample("mcpgate", 1, 4000, 200, 0), callSample("reverse_proxy", 1, 3000, 200, 0))
	var b bytes.Buffer
	if err := r.renderReadme(&b, "README.md"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if !strings.Contains(md, "### 2. tools/call, 64 sessions") {
		t.Errorf("no tools/call section:\n%s", md)
	}
	for _, absent := range []string{"### 1.", "### 3.", "### 4.", "### 5.", "µs/KB"} {
		if strings.Contains(md, absent) {
			t.Errorf("a part that did not run renders %q:\n%s", absent, md)
		}
	}
}

// TestRewriteReadmeFrom: a saved report rewrites the README's section as
// the run itself would (-readme-from), and leaves the rest of it alone.
func TestRewriteReadmeFrom(t *testing.T) {
	dir := t.TempDir()
	r := fullReport(t)
	path, err := r.save(filepath.Join(dir, "bench", "results"))
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, "README.md")
	const before, after = "# mcpgate\n\n## Performance\n\n", "\n\n## Next\ntext\n"
	if err := os.WriteFile(readme, []byte(before+beginMarker+"\nhand-typed\n"+endMarker+after), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := loadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.rewriteReadme(readme); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(readme)
	var want bytes.Buffer
	if err := r.renderReadme(&want, readme); err != nil {
		t.Fatal(err)
	}
	if string(got) != before+want.String()+after {
		t.Errorf("README after -readme-from:\n%s\nwant the run's own section:\n%s", got, want.String())
	}
	if !strings.Contains(string(got), "from bench/results/") || strings.Contains(string(got), "hand-typed") {
		t.Errorf("README after -readme-from:\n%s", got)
	}
}
