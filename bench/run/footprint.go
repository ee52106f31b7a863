package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// settle is how long the footprint waits before it reads a process's
// memory, for the work that a burst of requests leaves behind (goroutines
// ending, buffers going back to their pools) to finish.
const settle = time.Second

// footprint is the resident memory (VmRSS) of a fresh mcpgate and of a
// fresh Caddy reverse_proxy: at rest, holding Sessions idle legacy
// sessions whose connections have closed, and holding the same sessions
// each with an idle keep-alive connection; and their peaks (VmHWM), in
// bytes. The IdleAnon fields are the anonymous part (RssAnon) of the
// reading with idle sessions: the heap and stacks, without the binary's
// mapped pages.
type footprint struct {
	Sessions         int   `json:"sessions"`
	GatewayRest      int64 `json:"gateway_rest_bytes"`
	GatewayIdle      int64 `json:"gateway_idle_bytes"`
	GatewayIdleAnon  int64 `json:"gateway_idle_anon_bytes"`
	GatewayConnected int64 `json:"gateway_connected_bytes"`
	GatewayPeak      int64 `json:"gateway_peak_bytes"`
	ProxyRest        int64 `json:"proxy_rest_bytes"`
	ProxyIdle        int64 `json:"proxy_idle_bytes"`
	ProxyIdleAnon    int64 `json:"proxy_idle_anon_bytes"`
	ProxyConnected   int64 `json:"proxy_connected_bytes"`
	ProxyPeak        int64 `json:"proxy_peak_bytes"`
}

// memory is one process's footprint.
type memory struct{ rest, idle, idleAnon, connected, peak int64 }

// footprintPart starts an upstream, then an mcpgate with the tools/call
// part's config and a reverse_proxy to the same upstream, each fresh and
// one after the other, and reads their memory at rest (after one
// tools/call) and holding IdleSessions idle sessions.
func (e *env) footprintPart(ctx context.Context, rep *report) error {
	up, urls, err := startUpstream(ctx, e.upstream, e.dir, "upstream-footprint", 1, 0)
	if err != nil {
		return err
	}
	defer up.stop()
	f := &footprint{Sessions: e.cfg.IdleSessions}
	gw, gwURL, err := e.startGatewayAs(ctx, "mcpgate-footprint", callerIdentity, []string{"bench"}, urls, "")
	if err != nil {
		return err
	}
	m, err := e.hold(ctx, gw, target{name: "mcpgate", url: gwURL, tool: "bench_echo", header: http.Header{callerHeader: {"agent-0"}}})
	gw.stop()
	if err != nil {
		return err
	}
	f.GatewayRest, f.GatewayIdle, f.GatewayIdleAnon, f.GatewayConnected, f.GatewayPeak = m.rest, m.idle, m.idleAnon, m.connected, m.peak
	proxy, proxyURL, err := e.startProxy(ctx, "reverse_proxy-footprint", urls[0])
	if err != nil {
		return err
	}
	m, err = e.hold(ctx, proxy, target{name: "reverse_proxy", url: proxyURL, tool: "echo"})
	proxy.stop()
	if err != nil {
		return err
	}
	f.ProxyRest, f.ProxyIdle, f.ProxyIdleAnon, f.ProxyConnected, f.ProxyPeak = m.rest, m.idle, m.idleAnon, m.connected, m.peak
	rep.Footprint = f
	return nil
}

// hold reads p's memory after one tools/call to t, then while IdleSessions
// idle sessions are open on t with their connections closed, then while
// each of them holds an idle connection again. The sessions are opened
// without connections first, so that the first reading carries nothing of
// a thousand connections' buffers that the runtime has not yet returned.
func (e *env) hold(ctx context.Context, p *proc, t target) (memory, error) {
	var m memory
	if err := prime(ctx, run{method: load.MethodCall, era: load.EraLegacy}, t); err != nil {
		return m, p.failure(err)
	}
	read := func() (rss, hwm, anon int64, err error) {
		select {
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		case <-time.After(settle):
		}
		return procMemory(p.pid())
	}
	rest, _, _, err := read()
	if err != nil {
		return m, p.failure(err)
	}
	idle, err := load.HoldIdle(ctx, load.Options{URL: t.url, CallerHeader: callerHeader}, e.cfg.IdleSessions, false)
	if err != nil {
		return m, p.failure(fmt.Errorf("opening %d idle sessions: %w", e.cfg.IdleSessions, err))
	}
	defer idle.Close()
	held, _, heldAnon, err := read()
	if err != nil {
		return m, p.failure(err)
	}
	if err := idle.Connect(ctx); err != nil {
		return m, p.failure(fmt.Errorf("connecting %d idle sessions: %w", e.cfg.IdleSessions, err))
	}
	connected, peak, _, err := read()
	if err != nil {
		return m, p.failure(err)
	}
	fmt.Fprintf(os.Stderr, "footprint %-14s RSS at rest %6.1f MiB, with %d idle sessions %6.1f MiB (%.1f anonymous), each with a connection %6.1f MiB (peak %.1f)\n",
		t.name, mib(rest), idle.Len(), mib(held), mib(heldAnon), mib(connected), mib(peak))
	return memory{rest, held, heldAnon, connected, peak}, nil
}
