package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is everything a run measured, as written to the JSON file.
type report struct {
	Started   time.Time `json:"started"`
	Host      host      `json:"host"`
	Config    config    `json:"config"`
	Samples   []sample  `json:"samples"`
	Summaries []summary `json:"summaries"`
	Ratios    []ratio   `json:"ratios"`
	Goals     []goal    `json:"goals"`
	// Logs counts what each Caddy process logged as a warning or an error.
	Logs []logSummary `json:"logs"`
}

// host describes the machine, to judge how comparable two runs are.
type host struct {
	GoVersion    string `json:"go_version"`
	NumCPU       int    `json:"num_cpu"`
	LoadAvgStart string `json:"load_avg_start"`
	LoadAvgEnd   string `json:"load_avg_end"`
}

// summary is the median over rounds of one target at one concurrency.
type summary struct {
	Scenario    string        `json:"scenario"`
	Target      string        `json:"target"`
	Concurrency int           `json:"concurrency"`
	Rounds      int           `json:"rounds"` // the rounds with a measurement
	RPS         float64       `json:"rps"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Errors      int64         `json:"errors"` // summed over rounds
	ServerCPU   float64       `json:"server_cpu_us_per_req"`
	UpstreamCPU float64       `json:"upstream_cpu_us_per_req"`
	ClientCPU   float64       `json:"client_cpu_us_per_req"`
	DBCPU       float64       `json:"db_cpu_us_per_req,omitempty"`
	RSS         int64         `json:"rss_bytes"`      // at the end of the last round
	PeakRSS     int64         `json:"peak_rss_bytes"` // the highest VmHWM seen
	// ErrorSamples are distinct error messages from every round.
	ErrorSamples map[string]int64 `json:"error_samples,omitempty"`
}

// ratio is the median over rounds of one target's metric divided by
// another's in the same round.
type ratio struct {
	Name        string  `json:"name"`
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	Value       float64 `json:"value"`
}

// goal is one of the team's targets and whether this run met it.
type goal struct {
	Name     string  `json:"name"`
	Measured float64 `json:"measured"`
	Want     string  `json:"want"`
	Pass     bool    `json:"pass"`
}

// newReport starts a report for cfg.
func newReport(cfg config) *report {
	return &report{
		Started: time.Now(),
		Config:  cfg,
		Host:    host{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), LoadAvgStart: loadAvg()},
	}
}

// finish computes the summaries, ratios and goals from the samples.
func (r *report) finish() {
	r.Host.LoadAvgEnd = loadAvg()
	for _, k := range r.keys() {
		r.Summaries = append(r.Summaries, summarize(r.pick(k.scenario, k.target, k.conc)))
	}
	for _, c := range r.Config.Concurrency {
		r.callRatios(c)
		r.callGoals(c)
	}
	r.listRatiosAndGoal()
}

// key names one target at one concurrency.
type key struct {
	scenario, target string
	conc             int
}

// keys lists the measured keys in a fixed order: tools/call before
// tools/list, concurrencies as given, then direct, reverse_proxy, mcpgate,
// mcpgate-postgres.
func (r *report) keys() []key {
	scenarios := []struct {
		name  string
		concs []int
	}{{"call", r.Config.Concurrency}, {"list", []int{r.Config.ListConcurrency}}}
	var out []key
	for _, sc := range scenarios {
		for _, c := range sc.concs {
			for _, t := range []string{"direct", "reverse_proxy", "mcpgate", "mcpgate-postgres"} {
				if len(r.pick(sc.name, t, c)) > 0 {
					out = append(out, key{sc.name, t, c})
				}
			}
		}
	}
	return out
}

// pick returns the samples of one target at one concurrency.
func (r *report) pick(scenario, target string, conc int) []sample {
	var out []sample
	for _, s := range r.Samples {
		if s.Scenario == scenario && s.Target == target && s.Concurrency == conc {
			out = append(out, s)
		}
	}
	return out
}

// summarize takes the median of each metric over the samples that hold a
// measurement, and the sum of their errors.
func summarize(samples []sample) summary {
	s := summary{Scenario: samples[0].Scenario, Target: samples[0].Target, Concurrency: samples[0].Concurrency}
	var ok []sample
	for _, x := range samples {
		s.Errors += x.Result.Errors
		s.ErrorSamples = addErrors(s.ErrorSamples, x)
		s.PeakRSS = max(s.PeakRSS, x.PeakRSS)
		if x.ok() {
			ok = append(ok, x)
			s.RSS = x.RSS
		}
	}
	s.Rounds = len(ok)
	s.RPS = medianOf(ok, func(x sample) float64 { return x.RPS })
	s.P50 = time.Duration(medianOf(ok, func(x sample) float64 { return float64(x.Result.Latency.P50) }))
	s.P99 = time.Duration(medianOf(ok, func(x sample) float64 { return float64(x.Result.Latency.P99) }))
	s.ServerCPU = medianOf(ok, func(x sample) float64 { return x.ServerCPU })
	s.UpstreamCPU = medianOf(ok, func(x sample) float64 { return x.UpstreamCPU })
	s.ClientCPU = medianOf(ok, func(x sample) float64 { return x.ClientCPU })
	s.DBCPU = medianOf(ok, func(x sample) float64 { return x.DBCPU })
	return s
}

// addErrors adds a sample's error messages, and its dial error, to m.
func addErrors(m map[string]int64, x sample) map[string]int64 {
	if x.DialError == "" && len(x.Result.ErrorSamples) == 0 {
		return m
	}
	if m == nil {
		m = make(map[string]int64)
	}
	if x.DialError != "" {
		m["opening sessions: "+x.DialError]++
	}
	for msg, n := range x.Result.ErrorSamples {
		m[msg] += n
	}
	return m
}

// medianOf returns the median of f over samples, 0 when there are none.
func medianOf(samples []sample, f func(sample) float64) float64 {
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	return median(v)
}

// median returns the median of v, 0 when v is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// summaryOf returns the summary of one target, or a zero one.
func (r *report) summaryOf(scenario, target string, conc int) summary {
	for _, s := range r.Summaries {
		if s.Scenario == scenario && s.Target == target && s.Concurrency == conc {
			return s
		}
	}
	return summary{}
}

// pairRatio is the median over rounds of f(num)/f(den), taking num and den
// from the same round so that drift between rounds cancels out.
func (r *report) pairRatio(scenario string, conc int, num, den string, f func(sample) float64) float64 {
	dens := map[int]sample{}
	for _, s := range r.pick(scenario, den, conc) {
		dens[s.Round] = s
	}
	var v []float64
	for _, n := range r.pick(scenario, num, conc) {
		d, ok := dens[n.Round]
		if ok && n.ok() && d.ok() && f(d) != 0 {
			v = append(v, f(n)/f(d))
		}
	}
	return median(v)
}

// The metrics that ratios compare.
var (
	rps = func(s sample) float64 { return s.RPS }
	p50 = func(s sample) float64 { return float64(s.Result.Latency.P50) }
	p99 = func(s sample) float64 { return float64(s.Result.Latency.P99) }
	// cpuWithDB is the CPU per request of the target's process and its
	// database: Badger runs inside the gateway, PostgreSQL beside it, and
	// both count.
	cpuWithDB = func(s sample) float64 { return s.ServerCPU + s.DBCPU }
)

// metric is a named measure that a ratio compares.
type metric struct {
	name string
	f    func(sample) float64
}

// latencyMetrics are compared for every pair of targets; withCPU also
// where both targets have a process of their own to measure.
var (
	latencyMetrics = []metric{{"req/s", rps}, {"p50", p50}, {"p99", p99}}
	withCPU        = slices.Concat(latencyMetrics, []metric{{"CPU/req", cpuWithDB}})
)

// callRatios adds the tools/call ratios at one concurrency. The pairs
// with mcpgate-postgres appear only when it was measured.
func (r *report) callRatios(c int) {
	pairs := []struct {
		num, den string
		metrics  []metric
	}{
		{"mcpgate", "direct", latencyMetrics},
		{"mcpgate", "reverse_proxy", withCPU},
		{"reverse_proxy", "direct", latencyMetrics},
		{"mcpgate-postgres", "mcpgate", withCPU},
	}
	for _, p := range pairs {
		if len(r.pick("call", p.num, c)) == 0 {
			continue
		}
		for _, m := range p.metrics {
			name := fmt.Sprintf("%s/%s %s", p.num, p.den, m.name)
			r.Ratios = append(r.Ratios, ratio{name, "call", c, r.pairRatio("call", c, p.num, p.den, m.f)})
		}
	}
}

// callGoals judges the tools/call targets at one concurrency.
func (r *report) callGoals(c int) {
	gwProxy := r.pairRatio("call", c, "mcpgate", "reverse_proxy", rps)
	proxyDirect := r.pairRatio("call", c, "reverse_proxy", "direct", rps)
	cpu := r.summaryOf("call", "mcpgate", c).ServerCPU
	r.Goals = append(r.Goals,
		goal{fmt.Sprintf("mcpgate/reverse_proxy tools/call req/s, c=%d", c), gwProxy, "≥ 1.00", gwProxy >= 1},
		goal{fmt.Sprintf("reverse_proxy/direct tools/call req/s, c=%d", c), proxyDirect, "≥ 0.50", proxyDirect >= 0.5},
		goal{fmt.Sprintf("mcpgate CPU µs per tools/call, c=%d", c), cpu, "≤ 150", cpu > 0 && cpu <= 150},
	)
	if len(r.pick("call", "mcpgate-postgres", c)) == 0 {
		return
	}
	// Issue 11: on PostgreSQL, a tools/call with a valid cached token
	// touches no database, so it must cost next to what it does on Badger.
	pgBadger := r.pairRatio("call", c, "mcpgate-postgres", "mcpgate", rps)
	r.Goals = append(r.Goals,
		goal{fmt.Sprintf("mcpgate-postgres/mcpgate tools/call req/s, c=%d", c), pgBadger, "≥ 0.95", pgBadger >= 0.95})
}

// listRatiosAndGoal adds the tools/list ratios and judges its target.
func (r *report) listRatiosAndGoal() {
	c := r.Config.ListConcurrency
	if len(r.pick("list", "mcpgate", c)) == 0 {
		return
	}
	for _, m := range latencyMetrics {
		name := "aggregated-list/direct-list " + m.name
		r.Ratios = append(r.Ratios, ratio{name, "list", c, r.pairRatio("list", c, "mcpgate", "direct", m.f)})
	}
	v := r.pairRatio("list", c, "mcpgate", "direct", p50)
	name := fmt.Sprintf("aggregated tools/list (%d upstreams, cached) / direct tools/list p50, c=%d", r.Config.ListUpstreams, c)
	r.Goals = append(r.Goals, goal{name, v, "< 1.00", v > 0 && v < 1})
}

// save writes the report as JSON to dir/<timestamp>.json.
func (r *report) save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.Started.Format("20060102-150405")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib converts bytes to MiB.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// outcome renders a goal's result: n/a when nothing was measured.
func (g goal) outcome() string {
	switch {
	case g.Measured == 0:
		return "n/a"
	case g.Pass:
		return "PASS"
	}
	return "FAIL"
}

// dash renders v, or a dash when it does not apply.
func dash(format string, v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// writeMarkdown prints the report as Markdown tables.
func (r *report) writeMarkdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "## mcpgate benchmark, %s\n\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "%d CPUs, %s, load average %s at start and %s at end. Agents speak the %s era. Each window %v after a %v warm-up, %d rounds; every figure is the median of the rounds.\n\n",
		r.Host.NumCPU, r.Host.GoVersion, r.Host.LoadAvgStart, r.Host.LoadAvgEnd, c.Era, c.Duration, c.Warmup, c.Rounds)
	fmt.Fprintln(w, "| scenario | target | c | req/s | p50 ms | p99 ms | errors | CPU µs/req | database CPU µs/req | RSS MiB (end / peak) | upstream CPU µs/req | client CPU µs/req |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range r.Summaries {
		rss := "—"
		if s.PeakRSS > 0 {
			rss = fmt.Sprintf("%.1f / %.1f", mib(s.RSS), mib(s.PeakRSS))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.2f | %.2f | %d | %s | %s | %s | %.0f | %.0f |\n",
			scenarioName(s.Scenario), s.Target, s.Concurrency, s.RPS, ms(s.P50), ms(s.P99), s.Errors,
			dash("%.0f", s.ServerCPU), dash("%.1f", s.DBCPU), rss, s.UpstreamCPU, s.ClientCPU)
	}
	fmt.Fprintln(w, "\n| ratio (median of per-round ratios) | c | value |")
	fmt.Fprintln(w, "|---|--:|--:|")
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "| %s | %d | %s |\n", x.Name, x.Concurrency, dash("%.2f", x.Value))
	}
	fmt.Fprintln(w, "\n| goal | measured | want | result |")
	fmt.Fprintln(w, "|---|--:|--:|---|")
	for _, g := range r.Goals {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Name, dash("%.2f", g.Measured), g.Want, g.outcome())
	}
	r.writeErrors(w)
	r.writeLogs(w)
}

// writeLogs lists the Caddy processes that logged warnings or errors.
func (r *report) writeLogs(w io.Writer) {
	for _, l := range r.Logs {
		if l.Warnings+l.Errors == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s logged %d warnings and %d errors, e.g.:\n", l.Process, l.Warnings, l.Errors)
		for _, msg := range l.Samples {
			fmt.Fprintf(w, "- %s\n", snippetOf(msg))
		}
	}
}

// snippetOf shortens a log message for the report.
func snippetOf(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// scenarioName is how the Markdown names a scenario.
func scenarioName(s string) string {
	if s == "list" {
		return "tools/list"
	}
	return "tools/call"
}

// writeErrors lists the distinct error messages, if there were any.
func (r *report) writeErrors(w io.Writer) {
	var lines []string
	for _, s := range r.Summaries {
		for msg, n := range s.ErrorSamples {
			lines = append(lines, fmt.Sprintf("- %s %s c=%d: %d× %s", scenarioName(s.Scenario), s.Target, s.Concurrency, n, msg))
		}
	}
	if len(lines) == 0 {
		return
	}
	slices.Sort(lines)
	fmt.Fprintf(w, "\nErrors:\n%s\n", strings.Join(lines, "\n"))
}
