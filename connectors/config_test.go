package connectors

import (
	"strings"
	"testing"
)

// TestConfigSecrets checks that a connector's placeholders resolve, and
// that no error about a credential shows it.
func TestConfigSecrets(t *testing.T) {
	t.Setenv("MCPGATE_TEST_TOKEN", "tok-canary")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"resolved", Config{ID: "a", URL: "http://127.0.0.1/mcp", Auth: &AuthConfig{Type: "bearer", Token: "{env.MCPGATE_TEST_TOKEN}"}}, ""},
		{"unset placeholder", Config{ID: "a", URL: "http://127.0.0.1/mcp", Auth: &AuthConfig{Type: "bearer", Token: "{env.MCPGATE_TEST_UNSET}"}}, "auth token: a placeholder is not set"},
		{"bad shape", Config{ID: "a", URL: "http://127.0.0.1/mcp", Auth: &AuthConfig{Type: "bearer", Token: "{env.MCPGATE_TEST_TOKEN} x"}}, "white space"},
		{"bad url", Config{ID: "a", URL: "ftp://x"}, "scheme"},
		{"bad operation", Config{ID: "a", URL: "http://x/mcp", Tools: &ToolsConfig{Operations: map[string]Operation{"t": "delete"}}}, "read or write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.Expanded(expandEnv)
			var c *Connector
			if err == nil {
				c, err = cfg.Build()
			}
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
