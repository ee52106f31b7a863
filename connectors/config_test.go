package connectors

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestDuration checks the durations of the config: Go's syntax, days as
// Caddy writes them, and nanoseconds, which is also how they encode.
func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"30s"`: 30 * time.Second, `"1h30m"`: 90 * time.Minute, `"1d"`: 24 * time.Hour,
		`"1.5d2h"`: 38 * time.Hour, `30000000000`: 30 * time.Second,
	} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s = %v, %v; want %v", in, time.Duration(d), err, want)
		}
		if out, _ := json.Marshal(d); string(out) != strconv.FormatInt(int64(want), 10) {
			t.Errorf("%s encodes as %s", in, out)
		}
	}
	for _, in := range []string{`"soon"`, `"1x"`, `"d"`, `true`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}
