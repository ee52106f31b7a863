package mcpgate

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

func TestUnknownConnectorWarning(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	a := &App{logger: zap.New(core), Grants: []grants.Rule{
		{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"notoin/*", "notion/*"}},
	}}
	a.Connectors = []connectors.Config{{ID: "notion"}}
	policy, err := grants.New(a.Grants)
	if err != nil {
		t.Fatal(err)
	}
	a.warnUnknownGrants(policy)
	var warned []string
	for _, e := range logs.All() {
		warned = append(warned, e.ContextMap()["connector"].(string))
	}
	if strings.Join(warned, ",") != "notoin" {
		t.Errorf("warned about %v, want just the typo notoin", warned)
	}
}
