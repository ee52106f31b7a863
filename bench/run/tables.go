package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The tables below render one part each, for the report on stdout and for
// the README's section alike. Each returns "" when its part did not run.

// GoalsTable renders the goals with their figure's number.
func (r *report) GoalsTable() string {
	if len(r.Goals) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| figure | goal | measured | want | result |\n|--:|---|--:|--:|---|\n")
	for _, g := range r.Goals {
		fig := "—"
		if g.Figure > 0 {
			fig = fmt.Sprint(g.Figure)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", fig, g.Name, dash("%.2f", g.Measured), g.Want, g.outcome())
	}
	return b.String()
}

// CallTable renders the tools/call targets at concurrency c, with each
// one's ratios to direct and to reverse_proxy.
func (r *report) CallTable(c int) string {
	header := "| target | req/s | p50 ms | p99 ms | CPU µs/call | RSS MiB | ÷ direct req/s | ÷ reverse_proxy req/s | ÷ reverse_proxy CPU/call |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
	return tableOf(header, r.summariesOf("call", c), func(s summary) string {
		cpu := dash("%.0f", s.ServerCPU)
		if s.DBCPU > 0 {
			cpu += fmt.Sprintf(" + %.0f database", s.DBCPU)
		}
		rss := "—"
		if s.RSS > 0 {
			rss = fmt.Sprintf("%.0f", mib(s.RSS))
		}
		return fmt.Sprintf("| %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s |\n", s.Target, s.RPS, ms(s.P50), ms(s.P99), cpu, rss,
			r.ratioCell("call", c, s.Target, "direct", rps),
			r.ratioCell("call", c, s.Target, "reverse_proxy", rps),
			r.ratioCell("call", c, s.Target, "reverse_proxy", cpuWithDB))
	})
}

// tableOf renders header and one row per summary, or "" without any.
func tableOf(header string, rows []summary, row func(summary) string) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(header)
	for _, s := range rows {
		b.WriteString(row(s))
	}
	return b.String()
}

// ratioCell renders num/den of f as "1.23×", or a dash when one of them
// is missing, has no process to measure, or is the other.
func (r *report) ratioCell(scenario string, c int, num, den string, f func(sample) float64) string {
	if num == den {
		return "—"
	}
	return dash("%.2f×", r.pairRatio(scenario, c, num, den, f))
}

// summariesOf returns the summaries of one scenario at concurrency c.
func (r *report) summariesOf(scenario string, c int) []summary {
	var out []summary
	for _, s := range r.Summaries {
		if s.Scenario == scenario && s.Concurrency == c {
			out = append(out, s)
		}
	}
	return out
}

// ListTable renders the aggregated tools/list against the direct one.
func (r *report) ListTable() string {
	c := r.Config.ListConcurrency
	header := "| target | tools | pages | KB | lists/s | p50 ms | p99 ms | gateway CPU µs/list | ÷ direct lists/s |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
	return tableOf(header, r.summariesOf("list", c), func(s summary) string {
		a := r.answerOf("list-" + s.Target)
		return fmt.Sprintf("| %s | %d | %d | %.0f | %.0f | %.2f | %.2f | %s | %s |\n", s.Target, a.Tools, a.Pages, kb(a.Bytes),
			s.RPS, ms(s.P50), ms(s.P99), dash("%.0f", s.ServerCPU), r.ratioCell("list", c, s.Target, "direct", rps))
	})
}

// FootprintTable renders the footprint part.
func (r *report) FootprintTable() string {
	f := r.Footprint
	if f == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| process | RSS at rest MiB | with %d idle sessions MiB | of which anonymous MiB | per session KiB | the same, each with a connection MiB | per connected session KiB | peak MiB |\n|---|--:|--:|--:|--:|--:|--:|--:|\n", f.Sessions)
	per := func(more, rest int64) float64 { return float64(more-rest) / 1024 / float64(max(f.Sessions, 1)) }
	row := func(name string, rest, idle, anon, connected, peak int64) {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %s | %.1f | %.1f | %.1f | %.1f |\n", name,
			mib(rest), mib(idle), dash("%.1f", mib(anon)), per(idle, rest), mib(connected), per(connected, rest), mib(peak))
	}
	row("mcpgate", f.GatewayRest, f.GatewayIdle, f.GatewayIdleAnon, f.GatewayConnected, f.GatewayPeak)
	row("reverse_proxy", f.ProxyRest, f.ProxyIdle, f.ProxyIdleAnon, f.ProxyConnected, f.ProxyPeak)
	if f.ProxyIdle > 0 && f.ProxyConnected > 0 {
		anon := ""
		if f.ProxyIdleAnon > 0 {
			anon = fmt.Sprintf("%.2f×", float64(f.GatewayIdleAnon)/float64(f.ProxyIdleAnon))
		}
		fmt.Fprintf(&b, "| mcpgate ÷ reverse_proxy | %.2f× | %.2f× | %s | | %.2f× | | |\n",
			float64(f.GatewayRest)/float64(max(f.ProxyRest, 1)), float64(f.GatewayIdle)/float64(f.ProxyIdle), anon,
			float64(f.GatewayConnected)/float64(f.ProxyConnected))
	}
	return b.String()
}

// ColdStartTable renders the coldstart part.
func (r *report) ColdStartTable() string {
	cs := r.ColdStart
	if cs == nil || len(cs.Gateway) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| process, %d starts | median ms | min ms | max ms |\n|---|--:|--:|--:|\n", len(cs.Gateway))
	row := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f |\n", name, ms(medianDuration(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
	}
	row("mcpgate, quickstart Caddyfile", cs.Gateway)
	row("reverse_proxy", cs.Proxy)
	if len(cs.Proxy) > 0 {
		fmt.Fprintf(&b, "| mcpgate ÷ reverse_proxy | %.2f× | | |\n", float64(medianDuration(cs.Gateway))/float64(medianDuration(cs.Proxy)))
	}
	return b.String()
}

// ScaleCallTable renders the scale part's tools/call, each catalog against
// the first.
func (r *report) ScaleCallTable() string {
	c := r.Config
	if len(c.ScaleCalls) == 0 {
		return ""
	}
	base := c.ScaleCalls[0].String()
	header := fmt.Sprintf("| connectors × tools each | tools in all | req/s | p50 ms | CPU µs/call | ÷ %s req/s |\n|---|--:|--:|--:|--:|--:|\n", catalogLabel(base))
	return tableOf(header, r.summariesOf("scale-call", c.ScaleConcurrency), func(s summary) string {
		return fmt.Sprintf("| %s | %d | %.0f | %.2f | %.0f | %s |\n", catalogLabel(s.Target), catalogTotal(s.Target), s.RPS, ms(s.P50), s.ServerCPU,
			r.ratioCell("scale-call", c.ScaleConcurrency, s.Target, base, rps))
	})
}

// ScaleListTable renders the scale part's cached tools/list: its cost per
// list and per KB of the answer, each catalog against the first.
func (r *report) ScaleListTable() string {
	c := r.Config
	if len(c.ScaleLists) == 0 {
		return ""
	}
	base := c.ScaleLists[0].String()
	header := fmt.Sprintf("| connectors × tools each | tools in the answer | pages | KB | lists/s | CPU µs/list | CPU µs/KB | ÷ %s µs/KB |\n|---|--:|--:|--:|--:|--:|--:|--:|\n", catalogLabel(base))
	return tableOf(header, r.summariesOf("scale-list", c.ListConcurrency), func(s summary) string {
		a := r.answerOf(s.Target)
		perKB, vs := "—", "—"
		if a.Bytes > 0 && s.ServerCPU > 0 {
			perKB = fmt.Sprintf("%.2f", s.ServerCPU/kb(a.Bytes))
		}
		if s.Target != base {
			vs = dash("%.2f×", r.perKBRatio(s.Target, base))
		}
		return fmt.Sprintf("| %s | %d | %d | %.0f | %.0f | %.0f | %s | %s |\n", catalogLabel(s.Target), a.Tools, a.Pages, kb(a.Bytes),
			s.RPS, s.ServerCPU, perKB, vs)
	})
}

// catalogLabel renders a catalog's name, "10x50", as "10 × 50".
func catalogLabel(name string) string { return strings.Replace(name, "x", " × ", 1) }

// catalogTotal returns the tools in all of a catalog named like "10x50".
func catalogTotal(name string) int {
	cs, err := parseCatalogs(name)
	if err != nil {
		return 0
	}
	return cs[0].total()
}

// kb converts bytes to KB (1,024 bytes).
func kb(b int64) float64 { return float64(b) / 1024 }
