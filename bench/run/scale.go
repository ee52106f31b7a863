package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/bench/internal/load"
)

// ownTools is how many tools an internal/testupstream server serves of its
// own; -extra-tools adds to them.
const ownTools = 9

// catalog is what a gateway serves in the scale part: Connectors upstreams
// of Tools tools each.
type catalog struct {
	Connectors int `json:"connectors"`
	Tools      int `json:"tools_each"`
}

// String names the catalog as the flags do, e.g. "10x50".
func (c catalog) String() string { return fmt.Sprintf("%dx%d", c.Connectors, c.Tools) }

// total is the number of tools the gateway aggregates.
func (c catalog) total() int { return c.Connectors * c.Tools }

// parseCatalogs parses a comma-separated list of catalogs such as
// "10x50,100x9".
func parseCatalogs(s string) ([]catalog, error) {
	var out []catalog
	for f := range strings.SplitSeq(s, ",") {
		n, t, ok := strings.Cut(strings.TrimSpace(f), "x")
		conns, err1 := strconv.Atoi(n)
		tools, err2 := strconv.Atoi(t)
		if !ok || err1 != nil || err2 != nil || conns < 1 {
			return nil, fmt.Errorf("%q is not connectors x tools, such as 10x50", f)
		}
		if tools < ownTools {
			return nil, fmt.Errorf("%q: an upstream serves at least its own %d tools", f, ownTools)
		}
		out = append(out, catalog{conns, tools})
	}
	return out, nil
}

// startCatalog starts an upstream process that serves c and a gateway with
// one connector for each of its upstreams, up0 to upN, all granted. The
// target it returns calls up0's echo; stop stops both processes.
func (e *env) startCatalog(ctx context.Context, name string, c catalog) (target, error) {
	up, urls, err := startUpstream(ctx, e.upstream, e.dir, "upstream-"+name, c.Connectors, c.Tools-ownTools)
	if err != nil {
		return target{}, err
	}
	ids := make([]string, len(urls))
	for i := range urls {
		ids[i] = fmt.Sprintf("up%d", i)
	}
	gw, gwURL, err := e.startGateway(ctx, "mcpgate-"+name, ids, urls, "")
	if err != nil {
		up.stop()
		return target{}, err
	}
	return target{name: c.String(), url: gwURL, tool: "up0_echo", server: gw, upstream: up}, nil
}

// stop stops the target's gateway and its upstream process.
func (t target) stop() {
	t.server.stop()
	t.upstream.stop()
}

// scalePart measures, over gateways of several catalogs that run side by
// side, tools/call of one upstream's echo (ScaleCalls) and the cached
// aggregated tools/list (ScaleLists), whose answers it also sizes.
func (e *env) scalePart(ctx context.Context, rep *report) error {
	targets := map[string]target{}
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, c := range slices.Concat(e.cfg.ScaleCalls, e.cfg.ScaleLists) {
		if _, ok := targets[c.String()]; ok {
			continue
		}
		t, err := e.startCatalog(ctx, "scale-"+c.String(), c)
		if err != nil {
			return err
		}
		targets[c.String()] = t
	}
	calls := pickTargets(targets, e.cfg.ScaleCalls)
	r := e.run("scale-call", load.MethodCall, nil)
	for _, t := range calls {
		if err := prime(ctx, r, t); err != nil {
			return err
		}
	}
	samples, err := rounds(ctx, r, e.cfg.Rounds, []int{e.cfg.ScaleConcurrency}, calls, e.progressLog)
	rep.Samples = append(rep.Samples, samples...)
	if err != nil {
		return err
	}
	lists := pickTargets(targets, e.cfg.ScaleLists)
	for _, t := range lists {
		a, err := listAnswer(ctx, t.url) // fills the cache, as prime does
		if err != nil {
			return t.server.failure(fmt.Errorf("sizing the tools/list: %w", err))
		}
		a.Catalog = t.name
		rep.Answers = append(rep.Answers, a)
	}
	r = e.run("scale-list", load.MethodList, nil)
	samples, err = rounds(ctx, r, e.cfg.Rounds, []int{e.cfg.ListConcurrency}, lists, e.progressLog)
	rep.Samples = append(rep.Samples, samples...)
	return err
}

// pickTargets returns the targets of cs, in order.
func pickTargets(targets map[string]target, cs []catalog) []target {
	out := make([]target, len(cs))
	for i, c := range cs {
		out[i] = targets[c.String()]
	}
	return out
}
