package mcpmux_test

import (
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestDisabledBehindHostCheck checks that a disabled connector's own
// endpoint answers a request whose Host or Origin names another site with
// the DNS rebinding refusal, as every endpoint does, and tells only a
// request that passes that check that the connector is disabled: a page
// that rebinds its name to the gateway learns nothing of its connectors.
func TestDisabledBehindHostCheck(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a", "off")
	conns[1].Disabled = true
	g := startGateway(t, conns, everyone)
	for _, tc := range []struct {
		name, host, origin, says string
	}{
		{"rebound Host", "evil.example.com", "", "not one of the gateway's names"},
		{"rebound Origin", "", "http://evil.example.com", "not one of the gateway's names"},
		{"own Host", "", "", disabledSays},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, g.URL+"/connectors/off/mcp", agentHeader("alice", ""))
			c.version = v20260728
			body, h := c.request(1, "server/discover", map[string]any{})
			h.Set("Host", tc.host)
			h.Set("Origin", tc.origin)
			r := c.post(body, h)
			if r.status != 403 || !strings.Contains(string(r.body), tc.says) {
				t.Errorf("got HTTP %d %s, want 403 saying %q", r.status, r.body, tc.says)
			}
		})
	}
}
