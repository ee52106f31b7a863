package mcpmux_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestSecretsStayPut checks that a connector's credential appears in no
// log line (at debug level), no agent-facing error and no status, even
// when the upstream refuses it.
func TestSecretsStayPut(t *testing.T) {
	t.Parallel()
	const canary = "cred-canary-5f3a"
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: "the-right-token"})
	core, logs := observer.New(zapcore.DebugLevel)
	g := startGateway(t,
		[]*connectors.Connector{testConnector(t, "a", up, connectors.Auth{Type: connectors.AuthBearer, Token: canary})},
		everyone, func(o *mcpmux.Options) { o.Logger = zap.New(core) })

	var seen []string
	for _, era := range rawEras {
		c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
		for _, r := range []*rawReply{
			c.call("tools/list", nil),
			c.call("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}}),
			c.call("resources/read", map[string]any{"uri": "test://a/readme"}),
			c.call("tools/call", map[string]any{"name": "mcpgate_list_connectors"}),
		} {
			seen = append(seen, string(r.body))
		}
	}
	statuses, _ := json.Marshal(g.mux.Statuses(context.Background(), grants.Caller{ID: "alice"}))
	seen = append(seen, string(statuses))
	if !strings.Contains(string(statuses), "refused the credential") {
		t.Errorf("the status does not say the credential was refused: %s", statuses)
	}
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		seen = append(seen, e.Message+" "+string(line))
	}
	for _, s := range seen {
		if strings.Contains(s, canary) {
			t.Errorf("the credential leaked: %s", s)
		}
	}
}
