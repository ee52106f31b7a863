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
	// Footprint, ColdStart and Answers are the footprint part's, the
	// coldstart part's and the sizes of the scale part's lists; nil when
	// their part did not run.
	Footprint *footprint `json:"footprint,omitempty"`
	ColdStart *coldStart `json:"coldstart,omitempty"`
	Answers   []answer   `json:"answers,omitempty"`
	// path is the results JSON the report was saved to or read from.
	path string
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
	// Figure is the number of the figure that the goal judges,
	// 1 to 5, or 0 for one of the harness's own.
	Figure   int     `json:"figure"`
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

// finish computes the summaries, ratios and goals from the measurements.
func (r *report) finish() {
	r.Host.LoadAvgEnd = loadAvg()
	for _, k := range r.keys() {
		r.Summaries = append(r.Summaries, summarize(r.pick(k.scenario, k.target, k.conc)))
	}
	r.listRatiosAndGoal()
	for _, c := range r.Config.Concurrency {
		r.callRatios(c)
		r.callGoals(c)
	}
	r.footprintGoal()
	r.coldStartGoal()
	r.scaleRatiosAndGoals()
}

// empty reports whether the report holds no measurement at all.
func (r *report) empty() bool {
	return len(r.Samples) == 0 && r.Footprint == nil && r.ColdStart == nil
}

// key names one target at one concurrency.
type key struct {
	scenario, target string
	conc             int
}

// keys lists the measured keys in a fixed order: tools/call, tools/list,
// then the scale part's calls and lists; concurrencies as given; direct,
// reverse_proxy, mcpgate, mcpgate-postgres, or the catalogs as given.
func (r *report) keys() []key {
	c := r.Config
	targets := []string{"direct", "reverse_proxy", "mcpgate", "mcpgate-postgres"}
	scenarios := []struct {
		name    string
		concs   []int
		targets []string
	}{
		{"call", c.Concurrency, targets},
		{"list", []int{c.ListConcurrency}, targets},
		{"scale-call", []int{c.ScaleConcurrency}, names(c.ScaleCalls)},
		{"scale-list", []int{c.ListConcurrency}, names(c.ScaleLists)},
	}
	var out []key
	for _, sc := range scenarios {
		for _, conc := range sc.concs {
			for _, t := range sc.targets {
				k := key{sc.name, t, conc}
				if len(r.pick(sc.name, t, conc)) > 0 && !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// names returns the catalogs' names.
func names(cs []catalog) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
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

// The targets.
const (
	wantListRatio   = 3.0  // aggregated lists/s over a direct upstream's
	wantCallRatio   = 1.25 // mcpgate's tools/call req/s over reverse_proxy's
	wantCPURatio    = 0.70 // mcpgate's CPU per call over reverse_proxy's
	wantPostgres    = 0.95 // mcpgate-postgres's req/s over mcpgate's (issue 11)
	wantIdleMiB     = 64   // mcpgate's RSS holding the idle sessions
	wantColdStartMS = 250  // the median cold start
	wantScaleRatio  = 0.90 // any catalog's tools/call req/s over the first's
	wantPerKBRatio  = 1.10 // any catalog's list CPU per KB over the first's
)

// callGoals judges the tools/call targets at one concurrency.
func (r *report) callGoals(c int) {
	gwProxy := r.pairRatio("call", c, "mcpgate", "reverse_proxy", rps)
	cpu := r.pairRatio("call", c, "mcpgate", "reverse_proxy", cpuWithDB)
	r.Goals = append(r.Goals,
		goal{2, fmt.Sprintf("mcpgate/reverse_proxy tools/call req/s, c=%d", c), gwProxy, fmt.Sprintf("≥ %.2f", wantCallRatio), gwProxy >= wantCallRatio},
		goal{2, fmt.Sprintf("mcpgate/reverse_proxy CPU per tools/call, c=%d", c), cpu, fmt.Sprintf("≤ %.2f", wantCPURatio), cpu > 0 && cpu <= wantCPURatio},
	)
	if len(r.pick("call", "mcpgate-postgres", c)) == 0 {
		return
	}
	// Issue 11: on PostgreSQL, a tools/call with a valid cached token
	// touches no database, so it must cost next to what it does on Badger.
	pgBadger := r.pairRatio("call", c, "mcpgate-postgres", "mcpgate", rps)
	r.Goals = append(r.Goals,
		goal{0, fmt.Sprintf("mcpgate-postgres/mcpgate tools/call req/s, c=%d", c), pgBadger, fmt.Sprintf("≥ %.2f", wantPostgres), pgBadger >= wantPostgres})
}

// listRatiosAndGoal adds the tools/list ratios and judges its target: the
// aggregated list's throughput over the direct one's.
func (r *report) listRatiosAndGoal() {
	c := r.Config.ListConcurrency
	if len(r.pick("list", "mcpgate", c)) == 0 {
		return
	}
	for _, m := range []metric{{"lists/s", rps}, {"p50", p50}, {"p99", p99}} {
		name := "aggregated-list/direct-list " + m.name
		r.Ratios = append(r.Ratios, ratio{name, "list", c, r.pairRatio("list", c, "mcpgate", "direct", m.f)})
	}
	v := r.pairRatio("list", c, "mcpgate", "direct", rps)
	cfg := r.Config
	name := fmt.Sprintf("aggregated tools/list (%d upstreams × %d tools, cached) / one upstream with %d tools, lists/s, c=%d",
		cfg.ListUpstreams, cfg.ListTools/cfg.ListUpstreams, cfg.ListTools, c)
	r.Goals = append(r.Goals, goal{1, name, v, fmt.Sprintf("≥ %.2f", wantListRatio), v >= wantListRatio})
}

// footprintGoal judges mcpgate's RSS holding the idle sessions.
func (r *report) footprintGoal() {
	f := r.Footprint
	if f == nil {
		return
	}
	v := mib(f.GatewayIdle)
	name := fmt.Sprintf("mcpgate RSS MiB with %d idle legacy sessions", f.Sessions)
	r.Goals = append(r.Goals, goal{3, name, v, fmt.Sprintf("≤ %d", wantIdleMiB), v > 0 && v <= wantIdleMiB})
}

// coldStartGoal judges the median cold start.
func (r *report) coldStartGoal() {
	cs := r.ColdStart
	if cs == nil || len(cs.Gateway) == 0 {
		return
	}
	v := ms(medianDuration(cs.Gateway))
	name := fmt.Sprintf("cold start to the first tools/call, quickstart, median of %d, ms", len(cs.Gateway))
	r.Goals = append(r.Goals, goal{4, name, v, fmt.Sprintf("< %d", wantColdStartMS), v > 0 && v < wantColdStartMS})
}

// scaleRatiosAndGoals compares every catalog of the scale part with the
// first of its list, in the same round: tools/call req/s, and the cached
// tools/list's CPU per KB of its answer.
func (r *report) scaleRatiosAndGoals() {
	c := r.Config
	if len(c.ScaleCalls) > 1 && len(r.pick("scale-call", c.ScaleCalls[0].String(), c.ScaleConcurrency)) > 0 {
		base := c.ScaleCalls[0].String()
		for _, cat := range c.ScaleCalls[1:] {
			v := r.pairRatio("scale-call", c.ScaleConcurrency, cat.String(), base, rps)
			name := fmt.Sprintf("tools/call req/s, %s / %s, c=%d", cat, base, c.ScaleConcurrency)
			r.Ratios = append(r.Ratios, ratio{name, "scale-call", c.ScaleConcurrency, v})
			r.Goals = append(r.Goals, goal{5, name, v, fmt.Sprintf("≥ %.2f", wantScaleRatio), v >= wantScaleRatio})
		}
	}
	if len(c.ScaleLists) > 1 && len(r.Answers) > 0 {
		base := c.ScaleLists[0].String()
		for _, cat := range c.ScaleLists[1:] {
			v := r.perKBRatio(cat.String(), base)
			name := fmt.Sprintf("cached tools/list CPU per KB, %s / %s, c=%d", cat, base, c.ListConcurrency)
			r.Ratios = append(r.Ratios, ratio{name, "scale-list", c.ListConcurrency, v})
			if cat == c.ScaleLists[len(c.ScaleLists)-1] {
				r.Goals = append(r.Goals, goal{5, name, v, fmt.Sprintf("≤ %.2f", wantPerKBRatio), v > 0 && v <= wantPerKBRatio})
			}
		}
	}
}

// perKBRatio is the median over rounds of num's gateway CPU per list over
// den's, scaled by the sizes of their answers: 1 when a list costs in
// proportion to its size.
func (r *report) perKBRatio(num, den string) float64 {
	a, b := r.answerOf(num), r.answerOf(den)
	if a.Bytes == 0 || b.Bytes == 0 {
		return 0
	}
	cpu := r.pairRatio("scale-list", r.Config.ListConcurrency, num, den, func(s sample) float64 { return s.ServerCPU })
	return cpu * float64(b.Bytes) / float64(a.Bytes)
}

// answerOf returns the size of the catalog's list, or a zero answer.
func (r *report) answerOf(catalog string) answer {
	for _, a := range r.Answers {
		if a.Catalog == catalog {
			return a
		}
	}
	return answer{}
}

// medianDuration returns the median of ds, 0 when there are none.
func medianDuration(ds []time.Duration) time.Duration {
	v := make([]float64, len(ds))
	for i, d := range ds {
		v[i] = float64(d)
	}
	return time.Duration(median(v))
}

// loadReport reads a results JSON that save wrote.
func loadReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &report{path: path}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// save writes the report as JSON to dir/<timestamp>.json.
func (r *report) save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	r.path = filepath.Join(dir, r.Started.Format("20060102-150405")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return r.path, os.WriteFile(r.path, append(b, '\n'), 0o644)
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
	if c.Command != "" {
		fmt.Fprintf(w, "Reproduce with `%s`.\n\n", c.Command)
	}
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
	for _, t := range []struct{ title, table string }{
		{"tools/list", r.ListTable()},
		{"footprint", r.FootprintTable()},
		{"cold start", r.ColdStartTable()},
		{"scale: tools/call", r.ScaleCallTable()},
		{"scale: cached tools/list", r.ScaleListTable()},
		{"goals", r.GoalsTable()},
	} {
		if t.table != "" {
			fmt.Fprintf(w, "\n### %s\n\n%s", t.title, t.table)
		}
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
	switch s {
	case "list":
		return "tools/list"
	case "scale-call":
		return "scale tools/call"
	case "scale-list":
		return "scale tools/list"
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
