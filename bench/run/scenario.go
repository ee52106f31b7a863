package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// callScenario measures tools/call of echo through the three targets,
// which share one upstream process.
func (e *env) callScenario(ctx context.Context) ([]sample, error) {
	up, urls, err := startUpstream(ctx, e.upstream, e.dir, "upstream", 1, e.cfg.ExtraTools)
	if err != nil {
		return nil, err
	}
	defer up.stop()
	proxy, proxyURL, err := e.startProxy(ctx, urls[0])
	if err != nil {
		return nil, err
	}
	defer proxy.stop()
	gw, gwURL, err := e.startGateway(ctx, "mcpgate", []string{"bench"}, urls)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	targets := []target{
		{name: "direct", url: urls[0], tool: "echo"},
		{name: "reverse_proxy", url: proxyURL, tool: "echo", server: proxy},
		{name: "mcpgate", url: gwURL, tool: "bench_echo", server: gw},
	}
	r := e.run("call", load.MethodCall, up)
	return rounds(ctx, r, e.cfg.Rounds, e.cfg.Concurrency, targets, e.progressLog)
}

// listScenario measures an aggregated tools/list over ListUpstreams
// upstreams, from the gateway's cache, against a tools/list sent directly
// to one of them.
func (e *env) listScenario(ctx context.Context) ([]sample, error) {
	up, urls, err := startUpstream(ctx, e.upstream, e.dir, "upstream-list", e.cfg.ListUpstreams, e.cfg.ExtraTools)
	if err != nil {
		return nil, err
	}
	defer up.stop()
	ids := make([]string, len(urls))
	for i := range urls {
		ids[i] = fmt.Sprintf("up%d", i)
	}
	gw, gwURL, err := e.startGateway(ctx, "mcpgate-list", ids, urls)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	targets := []target{
		{name: "direct", url: urls[0]},
		{name: "mcpgate", url: gwURL, server: gw},
	}
	r := e.run("list", load.MethodList, up)
	if err := prime(ctx, r, targets[1]); err != nil {
		return nil, gw.failure(err)
	}
	return rounds(ctx, r, e.cfg.Rounds, []int{e.cfg.ListConcurrency}, targets, e.progressLog)
}

// run returns the settings of a scenario's measurements.
func (e *env) run(scenario, method string, upstream *proc) run {
	return run{scenario: scenario, method: method, era: e.cfg.Era, warmup: e.cfg.Warmup,
		dur: e.cfg.Duration, upstream: upstream, tick: e.tick}
}

// startProxy starts a Caddy that reverse-proxies to the upstream of
// upstreamURL, and returns it with its MCP endpoint.
func (e *env) startProxy(ctx context.Context, upstreamURL string) (*proc, string, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startCaddy(ctx, e.caddy, e.dir, "reverse_proxy", proxyCaddyfile(addr, u.Host), addr)
	if err != nil {
		return nil, "", err
	}
	e.caddies = append(e.caddies, p)
	return p, "http://" + addr + u.Path, nil
}

// startGateway starts a Caddy with mcpgate, one connector per URL, and
// returns it with its aggregated MCP endpoint.
func (e *env) startGateway(ctx context.Context, name string, ids, urls []string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startCaddy(ctx, e.caddy, e.dir, name, gatewayCaddyfile(addr, ids, urls), addr)
	if err != nil {
		return nil, "", err
	}
	e.caddies = append(e.caddies, p)
	return p, "http://" + addr + "/mcp", nil
}
