package oauthflow

import (
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// TestDCRClientName: a connector registers with its own client_name when
// its config names one, and the client ID metadata document keeps the
// gateway's.
func TestDCRClientName(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0].ClientName = "Acme agents (Notion)"
	})
	h.connect(h.as, "notion", "alice")
	if len(h.as.registers) != 1 {
		t.Fatalf("%d registrations, want 1", len(h.as.registers))
	}
	if got := h.as.registers[0]["client_name"]; got != "Acme agents (Notion)" {
		t.Errorf("client_name = %v, want the configured one", got)
	}
	if md := string(h.m.ClientMetadata()); !strings.Contains(md, `"client_name":"mcpgate"`) {
		t.Errorf("client metadata document = %s, want client_name mcpgate", md)
	}
}

// TestClientNameChecked: a client_name is a short line of text for a
// consent screen.
func TestClientNameChecked(t *testing.T) {
	for _, name := range []string{"two\nlines", " padded", strings.Repeat("n", maxClientName+1)} {
		cfg := Config{OAuthConfig: newOAuth(name)}
		if err := cfg.ValidateClient(); err == nil || !strings.Contains(err.Error(), "client_name") {
			t.Errorf("client_name %q: %v, want an error naming client_name", name, err)
		}
	}
	if err := (Config{OAuthConfig: newOAuth("Acme (Notion)")}).ValidateClient(); err != nil {
		t.Errorf("a good client_name: %v", err)
	}
}

// newOAuth is OAuth settings with only a client_name.
func newOAuth(name string) connectors.OAuthConfig { return connectors.OAuthConfig{ClientName: name} }
