package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
)

// callScenario measures tools/call of echo through the targets, which
// share one upstream process: direct, reverse_proxy, mcpgate on Badger
// and, unless -postgres=false, mcpgate on a private PostgreSQL.
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
	gw, gwURL, err := e.startGateway(ctx, "mcpgate", []string{"bench"}, urls, "")
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	targets := []target{
		{name: "direct", url: urls[0], tool: "echo"},
		{name: "reverse_proxy", url: proxyURL, tool: "echo", server: proxy},
		{name: "mcpgate", url: gwURL, tool: "bench_echo", server: gw},
	}
	if e.cfg.Postgres {
		pg, err := pgtest.StartServer()
		if err != nil {
			return nil, fmt.Errorf("starting PostgreSQL for mcpgate-postgres (-postgres=false skips it): %w", err)
		}
		defer pg.Stop() // after the gateway that uses it has stopped
		t, err := e.postgresTarget(ctx, pg, urls)
		if err != nil {
			return nil, err
		}
		defer t.server.stop()
		targets = append(targets, t)
	}
	r := e.run("call", load.MethodCall, up)
	return rounds(ctx, r, e.cfg.Rounds, e.cfg.Concurrency, targets, e.progressLog)
}

// postgresTarget starts the same gateway as the mcpgate target, but on
// storage postgres in pg's database, and returns it as the target
// "mcpgate-postgres", whose database's CPU is reported with it.
func (e *env) postgresTarget(ctx context.Context, pg *pgtest.Server, urls []string) (target, error) {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	storage := postgresStorage(pg.DSN("postgres"), base64.StdEncoding.EncodeToString(key))
	gw, gwURL, err := e.startGateway(ctx, "mcpgate-postgres", []string{"bench"}, urls, storage)
	if err != nil {
		return target{}, err
	}
	return target{name: "mcpgate-postgres", url: gwURL, tool: "bench_echo", server: gw, db: pg.PID()}, nil
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
	gw, gwURL, err := e.startGateway(ctx, "mcpgate-list", ids, urls, "")
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

// startGateway starts a Caddy with mcpgate, one connector per URL and
// the storage lines of gatewayCaddyfile, and returns it with its
// aggregated MCP endpoint.
func (e *env) startGateway(ctx context.Context, name string, ids, urls []string, storage string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startCaddy(ctx, e.caddy, e.dir, name, gatewayCaddyfile(addr, ids, urls, storage), addr)
	if err != nil {
		return nil, "", err
	}
	e.caddies = append(e.caddies, p)
	return p, "http://" + addr + "/mcp", nil
}
