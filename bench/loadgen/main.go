// Command loadgen drives an MCP Streamable HTTP endpoint with C concurrent
// legacy-era sessions, each looping tools/call (or tools/list), and prints
// requests per second, latency percentiles and errors.
//
//	go run ./bench/loadgen -url http://127.0.0.1:8080/mcp -c 64 -d 10s -tool bench_echo
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

func main() {
	url := flag.String("url", "", "the MCP endpoint (required)")
	conc := flag.Int("c", 64, "concurrent sessions")
	dur := flag.Duration("d", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before the measured window")
	method := flag.String("method", load.MethodCall, "tools/call or tools/list")
	tool := flag.String("tool", "echo", "the tool that tools/call calls")
	era := flag.String("era", load.EraLegacy, "protocol era: legacy (initialize, 2025-11-25) or modern (stateless 2026-07-28)")
	auth := flag.String("auth", "", "the Authorization header to send, e.g. 'Basic ...'")
	cpuProfile := flag.String("cpuprofile", "", "write the load generator's own CPU profile to this file, to see what the client costs")
	flag.Parse()
	if *url == "" {
		flag.Usage()
		os.Exit(2)
	}
	if *cpuProfile != "" {
		stop, err := startProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := load.Options{URL: *url, Concurrency: *conc, Method: *method, Tool: *tool, Era: *era}
	if *auth != "" {
		opts.Header = http.Header{"Authorization": {*auth}}
	}
	if err := run(ctx, opts, *warmup, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// startProfile starts a CPU profile into path and returns what stops it.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// run opens the sessions, warms up, measures and prints the result.
func run(ctx context.Context, opts load.Options, warmup, d time.Duration) error {
	pool, err := load.Dial(ctx, opts)
	if err != nil {
		return err
	}
	defer pool.Close()
	if warmup > 0 {
		pool.Run(ctx, warmup)
	}
	res := pool.Run(ctx, d)
	if err := ctx.Err(); err != nil {
		return err
	}
	report(opts, res)
	return nil
}

// report writes the result in a form that is easy to read and to grep.
func report(opts load.Options, res load.Result) {
	l := res.Latency
	fmt.Printf("%s %s c=%d: %.0f req/s  p50 %v  p90 %v  p99 %v  max %v  ok %d  errors %d  (%v)\n",
		opts.Method, opts.URL, opts.Concurrency, res.Throughput(),
		l.P50.Round(time.Microsecond), l.P90.Round(time.Microsecond), l.P99.Round(time.Microsecond),
		l.Max.Round(time.Microsecond), res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond))
	for msg, n := range res.ErrorSamples {
		fmt.Printf("  %d× %s\n", n, msg)
	}
}
