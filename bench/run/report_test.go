package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// callSample is a measured tools/call window of target at c=64.
func callSample(target string, round int, rps, cpu, dbCPU float64) sample {
	return sample{Scenario: "call", Target: target, Concurrency: 64, Round: round,
		Result: load.Result{Requests: int64(rps)}, RPS: rps, ServerCPU: cpu, DBCPU: dbCPU}
}

// finished computes a report of samples measured at c=64 without the
// tools/list scenario.
func finished(samples ...sample) *report {
	r := newReport(config{Concurrency: []int{64}, Rounds: 3})
	r.Samples = samples
	r.finish()
	return r
}

// goalOf returns the goal whose name starts with prefix.
func goalOf(r *report, prefix string) (goal, bool) {
	for _, g := range r.Goals {
		if strings.HasPrefix(g.Name, prefix) {
			return g, true
		}
	}
	return goal{}, false
}

// ratioOf returns the value of the ratio named name, or -1.
func ratioOf(r *report, name string) float64 {
	for _, x := range r.Ratios {
		if x.Name == name {
			return x.Value
		}
	}
	return -1
}

// TestPostgresGoal: mcpgate-postgres is judged against mcpgate in the
// same round, want at least 0.95 of its req/s, and its CPU per call
// counts the database's.
func TestPostgresGoal(t *testing.T) {
	badger := []sample{
		callSample("mcpgate", 1, 4000, 200, 0),
		callSample("mcpgate", 2, 2000, 200, 0),
		callSample("mcpgate", 3, 3000, 200, 0),
	}
	for _, tc := range []struct {
		rps  [3]float64
		want float64
		pass bool
	}{
		{[3]float64{3880, 1960, 2850}, 0.97, true}, // per round 0.97, 0.98, 0.95
		{[3]float64{3600, 1960, 2760}, 0.92, false},
	} {
		samples := append([]sample(nil), badger...)
		for i, rps := range tc.rps {
			samples = append(samples, callSample("mcpgate-postgres", i+1, rps, 190, 30))
		}
		r := finished(samples...)
		g, ok := goalOf(r, "mcpgate-postgres/mcpgate tools/call req/s, c=64")
		if !ok || g.Want != "≥ 0.95" || g.Pass != tc.pass || g.Measured < tc.want-0.005 || g.Measured > tc.want+0.005 {
			t.Errorf("req/s %v: goal %+v (found %v), want %.2f, pass %v", tc.rps, g, ok, tc.want, tc.pass)
		}
		if v := ratioOf(r, "mcpgate-postgres/mcpgate CPU/req"); v < 1.099 || v > 1.101 {
			t.Errorf("CPU/req ratio %v, want (190+30)/200 = 1.10", v)
		}
		if s := r.summaryOf("call", "mcpgate-postgres", 64); s.DBCPU != 30 {
			t.Errorf("summary's database CPU %v, want 30", s.DBCPU)
		}
	}
}

// TestPostgresSkipped: a run without mcpgate-postgres (-postgres=false)
// reports no goal, ratio or row for it.
func TestPostgresSkipped(t *testing.T) {
	r := finished(callSample("mcpgate", 1, 4000, 200, 0), callSample("reverse_proxy", 1, 3000, 200, 0))
	if g, ok := goalOf(r, "mcpgate-postgres"); ok {
		t.Errorf("goal %+v without mcpgate-postgres samples", g)
	}
	if v := ratioOf(r, "mcpgate-postgres/mcpgate req/s"); v != -1 {
		t.Errorf("ratio %v without mcpgate-postgres samples", v)
	}
	var out bytes.Buffer
	r.writeMarkdown(&out)
	if strings.Contains(out.String(), "mcpgate-postgres") {
		t.Errorf("the report names mcpgate-postgres:\n%s", out.String())
	}
	if v := ratioOf(r, "mcpgate/reverse_proxy CPU/req"); v < 0.999 || v > 1.001 {
		t.Errorf("mcpgate/reverse_proxy CPU/req %v, want 1", v)
	}
}

// TestPostgresRow: the Markdown lists mcpgate-postgres after mcpgate,
// with its database's CPU per call.
func TestPostgresRow(t *testing.T) {
	r := finished(callSample("mcpgate-postgres", 1, 3900, 190, 27.5), callSample("mcpgate", 1, 4000, 200, 0))
	var out bytes.Buffer
	r.writeMarkdown(&out)
	md := out.String()
	i, j := strings.Index(md, "| mcpgate |"), strings.Index(md, "| mcpgate-postgres |")
	if i < 0 || j < i {
		t.Fatalf("rows of mcpgate at %d and mcpgate-postgres at %d:\n%s", i, j, md)
	}
	if row, _, _ := strings.Cut(md[j:], "\n"); !strings.Contains(row, "| 190 | 27.5 |") {
		t.Errorf("mcpgate-postgres row %q, want its CPU 190 and database CPU 27.5", row)
	}
}
