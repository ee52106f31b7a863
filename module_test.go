package mcpgate

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

func TestUnknownConnectorWarning(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	a := &App{logger: zap.New(core), Grants: []GrantConfig{
		{Sources: []string{"*"}, Connectors: []string{"notion"}, Tools: []string{"notoin/*", "notion/*"}},
	}}
	if _, err := a.buildPolicy([]*connectors.Connector{{ID: "notion"}}); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, e := range logs.All() {
		warned = append(warned, e.ContextMap()["connector"].(string))
	}
	if strings.Join(warned, ",") != "notoin" {
		t.Errorf("warned about %v, want just the typo notoin", warned)
	}
}

func TestSplitList(t *testing.T) {
	tests := map[string]string{
		"":                   "",
		"a":                  "a",
		"d,b c\ta":           "a|b|c|d",
		" a,,a , b ":         "a|b",
		"ai-users,ai-users ": "ai-users",
	}
	for in, want := range tests {
		if got := strings.Join(splitList(in), "|"); got != want {
			t.Errorf("splitList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewConnectorSecrets(t *testing.T) {
	newReplacer := caddy.NewReplacer
	t.Setenv("MCPGATE_TEST_TOKEN", "tok-canary")
	tests := []struct {
		name string
		cfg  ConnectorConfig
		want string
	}{
		{"resolved", ConnectorConfig{ID: "a", URL: "http://127.0.0.1/mcp", Auth: &AuthConfig{Type: "bearer", Token: "{env.MCPGATE_TEST_TOKEN}"}}, ""},
		{"unset placeholder", ConnectorConfig{ID: "a", URL: "http://127.0.0.1/mcp", Auth: &AuthConfig{Type: "bearer", Token: "{env.MCPGATE_TEST_UNSET}"}}, "auth token: a placeholder is not set"},
		{"bad shape", ConnectorConfig{ID: "a", URL: "http://127.0.0.1/mcp", Auth: &AuthConfig{Type: "bearer", Token: "{env.MCPGATE_TEST_TOKEN} x"}}, "white space"},
		{"bad url", ConnectorConfig{ID: "a", URL: "ftp://x"}, "scheme"},
		{"bad operation", ConnectorConfig{ID: "a", URL: "http://x/mcp", Tools: &ToolsConfig{Operations: map[string]string{"t": "delete"}}}, "read or write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConnector(newReplacer(), tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want == "" && c.Auth.Token != "tok-canary":
				t.Errorf("token not resolved")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "tok-canary") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
