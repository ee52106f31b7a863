package conformance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/mcpgate/caddy-mcpgate" // the mcpgate Caddy modules
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
)

// The Caddy this file starts, on ports apart from every other test's: a
// site for the caller granted the connectors both, legacy and modern, and
// one for a caller granted only solo, whose aggregated /mcp then offers
// each resource URI once.
const (
	gatewayAdminPort = 2993
	gatewaySite      = "http://127.0.0.1:9380"
	soloSite         = "http://127.0.0.1:9382"
)

// startGateway runs a real Caddy with mcpgate in front of one fixture of
// each era, and one more for the solo caller, so that no upstream session
// serves two callers. The suite sends no credentials, so each site names
// its caller. The sites take any Host, so that mcpgate, not Caddy's site
// matching, judges a rebound one.
func startGateway(t *testing.T) {
	t.Helper()
	both, legacy, modern, solo := startFixture(t, BothEras), startFixture(t, LegacyOnly), startFixture(t, ModernOnly), startFixture(t, BothEras)
	sitetest.NewTester(t, gatewayAdminPort).InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port 9380
	https_port 9381
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
		identity {http.vars.caller}
		connector both {
			url %s
		}
		connector legacy {
			url %s
		}
		connector modern {
			url %s
		}
		connector solo {
			url %s
		}
		grant {
			src user:conformance
			connectors both legacy modern
		}
		grant {
			src user:solo
			connectors solo
		}
	}
}
http://:9380 {
	vars caller conformance
	mcpgate
}
http://:9382 {
	vars caller solo
	mcpgate
}
`, gatewayAdminPort, both, legacy, modern, solo), "caddyfile")
	// Unloaded first, before the fixtures close: caddytest leaves a
	// config running, and with it any upstream call still parked.
	t.Cleanup(func() {
		_ = caddy.Load(fmt.Appendf(nil, `{"admin":{"listen":"localhost:%d"}}`, gatewayAdminPort), true)
	})
}

// Scenarios that pass directly against the fixture but cannot pass
// through mcpgate on a given path, each with the reason. The README lists
// them too.
var (
	// bridgeToLegacy: a 2026-07-28 agent whose connector speaks only the
	// legacy era. Its questions reach the agent as input-required results
	// (the gateway parks the upstream call), but what the upstream never
	// says cannot be carried.
	bridgeToLegacy = map[string]string{
		"input-required-result-basic-elicitation":       "a legacy upstream's question has no inputRequests key; the gateway names it, and the scenario wants the fixture's own name",
		"input-required-result-basic-sampling":          "a legacy upstream's question has no inputRequests key; the gateway names it, and the scenario wants the fixture's own name",
		"input-required-result-basic-list-roots":        "a legacy upstream's question has no inputRequests key; the gateway names it, and the scenario wants the fixture's own name",
		"input-required-result-multiple-input-requests": "a legacy upstream asks one question at a time and waits for each answer, so they cannot all come in the first round",
		"input-required-result-capability-check":        "a legacy upstream session is shared by every agent and holds the capabilities the gateway declared at initialize, not this request's",
		"server-stateless":                              "a legacy upstream learns no per-request client capabilities, so it cannot refuse with -32021 a call that needs one the request did not declare",
	}
	// bridgeToModern: a 2025-11-25 agent whose connector speaks only
	// 2026-07-28. Nothing is lost that way.
	bridgeToModern = map[string]string{}
	// aggregated: the aggregated /mcp, where tool and prompt names carry
	// their connector's prefix (solo_test_simple_text), so a scenario that
	// calls one by the fixture's bare name finds nothing. Each passes on
	// /connectors/{id}/mcp.
	aggregated20251125 = prefixed("completion-complete", "tools-call-simple-text", "tools-call-image",
		"tools-call-audio", "tools-call-embedded-resource", "tools-call-mixed-content", "tools-call-with-logging",
		"tools-call-error", "tools-call-with-progress", "tools-call-sampling", "tools-call-elicitation",
		"elicitation-sep1034-defaults", "elicitation-sep1330-enums", "prompts-get-simple", "prompts-get-with-args",
		"prompts-get-embedded-resource", "prompts-get-with-image", "json-schema-2020-12")
	aggregated20260728 = prefixed("completion-complete", "tools-call-simple-text", "tools-call-image",
		"tools-call-audio", "tools-call-embedded-resource", "tools-call-mixed-content", "tools-call-error",
		"tools-call-with-progress", "prompts-get-simple", "prompts-get-with-args", "prompts-get-embedded-resource",
		"prompts-get-with-image", "json-schema-2020-12", "server-stateless",
		"input-required-result-basic-elicitation", "input-required-result-basic-sampling",
		"input-required-result-basic-list-roots", "input-required-result-request-state",
		"input-required-result-multiple-input-requests", "input-required-result-multi-round",
		"input-required-result-non-tool-request", "input-required-result-result-type",
		"input-required-result-tampered-state", "input-required-result-capability-check")
)

// prefixed lists scenarios that call a tool or prompt by its bare name.
func prefixed(names ...string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		out[n] = "calls a tool or prompt by the fixture's bare name, which carries the connector's prefix at /mcp"
	}
	return out
}

// TestGatewayConformance runs the official suite's server scenarios
// through a real Caddy with mcpgate, on each revision's wire, and requires
// every scenario that passes directly against the fixture to pass through
// the gateway: on /connectors/{id}/mcp of a connector that speaks both
// eras, across the era bridge either way, and on the aggregated /mcp;
// but for the scenarios listed above, each of which must still fail, so
// that the lists stay true.
func TestGatewayConformance(t *testing.T) {
	direct := map[string]map[string]Result{}
	for _, req := range []string{Requirements20251125, Requirements20260728} {
		results, err := Run(context.Background(), RunOptions{URL: startFixture(t, BothEras), Requirements: req, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		direct[req] = results
	}
	startGateway(t)
	for _, tc := range []struct {
		name, url, requirements string
		cannot                  map[string]string
	}{
		{"both-eras", gatewaySite + "/connectors/both/mcp", Requirements20251125, nil},
		{"both-eras", gatewaySite + "/connectors/both/mcp", Requirements20260728, nil},
		{"bridge-to-legacy", gatewaySite + "/connectors/legacy/mcp", Requirements20260728, bridgeToLegacy},
		{"bridge-to-modern", gatewaySite + "/connectors/modern/mcp", Requirements20251125, bridgeToModern},
		{"aggregated", soloSite + "/mcp", Requirements20251125, aggregated20251125},
		{"aggregated", soloSite + "/mcp", Requirements20260728, aggregated20260728},
	} {
		t.Run(tc.name+"/"+tc.requirements, func(t *testing.T) {
			results, err := Run(context.Background(), RunOptions{URL: tc.url, Requirements: tc.requirements, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			passed := 0
			for _, name := range sortedNames(direct[tc.requirements]) {
				want := direct[tc.requirements][name]
				got, ran := results[name]
				reason, excused := tc.cannot[name]
				switch {
				case !want.Passed:
					continue // fails directly: nothing to carry
				case !ran:
					t.Errorf("%s passes directly but did not run through the gateway", name)
				case got.Passed && excused:
					t.Errorf("%s passes now: take it off the list (%s)", name, reason)
				case !got.Passed && !excused:
					t.Errorf("%s passes directly but fails through the gateway: %s", name, describe(got.Failures))
				case got.Passed:
					passed++
				}
			}
			t.Logf("%d scenarios pass through the gateway; %d cannot, as listed", passed, len(tc.cannot))
			for _, name := range slices.Sorted(maps.Keys(tc.cannot)) {
				if _, ok := direct[tc.requirements][name]; !ok {
					t.Errorf("%s is listed but is no scenario of %s", name, tc.requirements)
				}
			}
		})
	}
}
