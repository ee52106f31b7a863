package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// target is one endpoint under test.
type target struct {
	// name is "direct", "reverse_proxy", "mcpgate" or "mcpgate-postgres",
	// or a catalog such as "10x50" in the scale part.
	name string
	url  string
	tool string // the echo tool's name at this endpoint
	// server is the process whose CPU and memory are reported, nil when
	// the target is the upstream itself.
	server *proc
	// db is the pid of the database server the target keeps its records
	// in, whose CPU (its backends' included) is reported; 0 for none.
	db int
	// upstream is the process that serves the target's upstreams, when it
	// is not the run's.
	upstream *proc
	// header is sent with every request to the target; nil for none.
	header http.Header
}

// upstreamOf returns the process that serves t's upstreams in r.
func (r run) upstreamOf(t target) *proc {
	if t.upstream != nil {
		return t.upstream
	}
	return r.upstream
}

// run is one measurement's settings.
type run struct {
	scenario    string // "call" or "list"
	method      string
	era         string
	concurrency int
	round       int
	warmup, dur time.Duration
	upstream    *proc
	tick        time.Duration
}

// sample is one measured window of one target.
type sample struct {
	Scenario    string      `json:"scenario"`
	Target      string      `json:"target"`
	Concurrency int         `json:"concurrency"`
	Round       int         `json:"round"`
	Result      load.Result `json:"result"`
	// DialError says why the sessions could not be opened; the sample
	// then holds no measurement.
	DialError string  `json:"dial_error,omitempty"`
	RPS       float64 `json:"rps"`
	// ServerCPU, UpstreamCPU and ClientCPU are CPU microseconds per
	// successful request of the target's own process (0 for direct), of
	// the upstream process and of this process, the load generator.
	ServerCPU   float64 `json:"server_cpu_us_per_req"`
	UpstreamCPU float64 `json:"upstream_cpu_us_per_req"`
	ClientCPU   float64 `json:"client_cpu_us_per_req"`
	// DBCPU is the CPU microseconds per successful request of the
	// target's database server and its backends; 0 without one.
	DBCPU float64 `json:"db_cpu_us_per_req,omitempty"`
	// RSS and PeakRSS are the target process's VmRSS at the end of the
	// window and its VmHWM, in bytes.
	RSS     int64 `json:"rss_bytes"`
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// ok reports whether the sample holds a measurement.
func (s sample) ok() bool { return s.DialError == "" && s.Result.Requests > 0 }

// snapshot is the resource use of every process that a sample reports.
type snapshot struct {
	server, upstream usage
	client, db       time.Duration
}

// measure opens the sessions, warms up, and measures one window of t,
// reading the processes' CPU time just before and after it.
func measure(ctx context.Context, r run, t target) (sample, error) {
	s := sample{Scenario: r.scenario, Target: t.name, Concurrency: r.concurrency, Round: r.round}
	pool, err := load.Dial(ctx, load.Options{URL: t.url, Concurrency: r.concurrency, Method: r.method, Tool: t.tool, Era: r.era})
	if err != nil {
		s.DialError = err.Error()
		s.Result.Errors = int64(r.concurrency)
		return s, ctx.Err()
	}
	defer pool.Close()
	pool.Run(ctx, r.warmup)
	before, err := take(r, t)
	if err != nil {
		return s, err
	}
	s.Result = pool.Run(ctx, r.dur)
	after, err := take(r, t)
	if err != nil {
		return s, err
	}
	s.account(before, after)
	return s, ctx.Err()
}

// take reads the resource use of t's server, its database, the upstream
// and this process.
func take(r run, t target) (snapshot, error) {
	var snap snapshot
	var err error
	if t.server != nil {
		if snap.server, err = procUsage(t.server.pid(), r.tick); err != nil {
			return snap, t.server.failure(err)
		}
	}
	if t.db != 0 {
		if snap.db, err = treeCPU(t.db, r.tick); err != nil {
			return snap, fmt.Errorf("%s: the database's CPU: %w", t.name, err)
		}
	}
	up := r.upstreamOf(t)
	if snap.upstream, err = procUsage(up.pid(), r.tick); err != nil {
		return snap, up.failure(err)
	}
	snap.client = selfCPU()
	return snap, nil
}

// account fills in the sample's rates from the snapshots around its window.
func (s *sample) account(before, after snapshot) {
	s.RPS = s.Result.Throughput()
	n := float64(s.Result.Requests)
	if n == 0 {
		return
	}
	perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	s.ServerCPU = perReq(after.server.cpu - before.server.cpu)
	s.UpstreamCPU = perReq(after.upstream.cpu - before.upstream.cpu)
	s.ClientCPU = perReq(after.client - before.client)
	s.DBCPU = perReq(after.db - before.db)
	s.RSS, s.PeakRSS = after.server.rss, after.server.hwm
}

// prime sends one request of r's method to t and checks its reply, e.g. to
// fill the gateway's list cache before anything is measured.
func prime(ctx context.Context, r run, t target) error {
	pool, err := load.Dial(ctx, load.Options{URL: t.url, Header: t.header, Method: r.method, Tool: t.tool, Era: r.era})
	if err != nil {
		return fmt.Errorf("%s: priming: %w", t.name, err)
	}
	defer pool.Close()
	if err := pool.Once(ctx); err != nil {
		return fmt.Errorf("%s: priming: %w", t.name, err)
	}
	return nil
}

// rounds measures every target at every concurrency, rounds times. The
// targets of a round run back to back, in an order that rotates from round
// to round, so that drift on a shared machine hits them alike.
func rounds(ctx context.Context, r run, n int, concs []int, targets []target, logf func(sample)) ([]sample, error) {
	var out []sample
	for round := range n {
		for _, c := range concs {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				r.round, r.concurrency = round+1, c
				s, err := measure(ctx, r, t)
				if err != nil {
					return out, err
				}
				logf(s)
				out = append(out, s)
				if t.server != nil && t.server.exited() {
					return out, t.server.failure(errors.New("exited during the measurement"))
				}
			}
		}
	}
	return out, nil
}
