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
	proxy, proxyURL, err := e.startProxy(ctx, "reverse_proxy", urls[0])
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

// callPart runs the tools/call scenario into rep.
func (e *env) callPart(ctx context.Context, rep *report) error {
	samples, err := e.callScenario(ctx)
	rep.Samples = append(rep.Samples, samples...)
	return err
}

// listPart runs the tools/list scenario into rep.
func (e *env) listPart(ctx context.Context, rep *report) error {
	samples, err := e.listScenario(ctx, rep)
	rep.Samples = append(rep.Samples, samples...)
	return err
}

// listScenario measures an aggregated tools/list over ListUpstreams
// upstreams that serve ListTools tools between them, from the gateway's
// cache, against a tools/list sent directly to one upstream that serves
// as many tools alone: the same catalog, one hop or through the gateway.
// The size of both answers goes to rep, as the catalogs "list-direct"
// and "list-mcpgate".
func (e *env) listScenario(ctx context.Context, rep *report) ([]sample, error) {
	each := catalog{Connectors: e.cfg.ListUpstreams, Tools: e.cfg.ListTools / e.cfg.ListUpstreams}
	gw, err := e.startCatalog(ctx, "list", each)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	gw.name = "mcpgate"
	big, bigURLs, err := startUpstream(ctx, e.upstream, e.dir, "upstream-list-direct", 1, e.cfg.ListTools-ownTools)
	if err != nil {
		return nil, err
	}
	defer big.stop()
	direct := target{name: "direct", url: bigURLs[0], upstream: big}
	r := e.run("list", load.MethodList, gw.upstream)
	targets := []target{direct, gw}
	for _, t := range targets {
		a, err := listAnswer(ctx, t.url) // fills the gateway's cache, as prime does
		if err != nil {
			return nil, fmt.Errorf("%s: sizing the tools/list: %w", t.name, err)
		}
		a.Catalog = "list-" + t.name
		rep.Answers = append(rep.Answers, a)
	}
	return rounds(ctx, r, e.cfg.Rounds, []int{e.cfg.ListConcurrency}, targets, e.progressLog)
}

// run returns the settings of a scenario's measurements.
func (e *env) run(scenario, method string, upstream *proc) run {
	return run{scenario: scenario, method: method, era: e.cfg.Era, warmup: e.cfg.Warmup,
		dur: e.cfg.Duration, upstream: upstream, tick: e.tick}
}

// startProxy starts a Caddy named name that reverse-proxies to the
// upstream of upstreamURL, and returns it with its MCP endpoint.
func (e *env) startProxy(ctx context.Context, name, upstreamURL string) (*proc, string, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startCaddy(ctx, e.caddy, e.dir, name, proxyCaddyfile(addr, u.Host), addr)
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
	return e.startGatewayAs(ctx, name, benchIdentity, ids, urls, storage)
}

// startGatewayAs is startGateway with the callers named by identity.
func (e *env) startGatewayAs(ctx context.Context, name, identity string, ids, urls []string, storage string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startCaddy(ctx, e.caddy, e.dir, name, gatewayCaddyfile(addr, identity, ids, urls, storage), addr)
	if err != nil {
		return nil, "", err
	}
	e.caddies = append(e.caddies, p)
	return p, "http://" + addr + "/mcp", nil
}
