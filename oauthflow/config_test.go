package oauthflow

import (
	"context"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

func TestConfigValidate(t *testing.T) {
	discover := func(context.Context, string, *discovery.Challenge) (*discovery.Result, error) { return nil, nil }
	base := Config{Connector: "notion", OAuthConfig: connectors.OAuthConfig{Resource: "https://mcp.notion.test/mcp"}, Discover: discover}
	secret := "SECRET-CANARY-cfg"
	tests := []struct {
		name   string
		change func(*Config)
		field  string // "" means valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"static", func(c *Config) { c.ClientID, c.ClientSecret, c.Registration = "id", secret, "static" }, ""},
		{"full overrides", func(c *Config) {
			c.Discover, c.Issuer, c.AuthorizationEndpoint, c.TokenEndpoint = nil, "https://as.test", "https://as.test/a", "https://as.test/t"
		}, ""},
		{"loopback", func(c *Config) { c.TokenEndpoint, c.InsecureLoopback = "http://127.0.0.1:9/t", true }, ""},
		// As the egress policy that insecure_loopback sets allows it.
		{"loopback name", func(c *Config) { c.TokenEndpoint, c.InsecureLoopback = "http://as.localhost:9/t", true }, ""},
		{"loopback, not canonical", func(c *Config) { c.TokenEndpoint, c.InsecureLoopback = "http://127.1:9/t", true }, "token_endpoint"},
		{"bad id", func(c *Config) { c.Connector = "No_Good" }, "connector id"},
		{"no resource", func(c *Config) { c.Resource = "" }, "resource"},
		{"resource fragment", func(c *Config) { c.Resource += "#x" }, "resource"},
		{"registration", func(c *Config) { c.Registration = "magic" }, "registration"},
		{"consent", func(c *Config) { c.Consent = "everyone" }, "consent"},
		{"secret without id", func(c *Config) { c.ClientSecret = secret }, "client_id"},
		{"static without id", func(c *Config) { c.Registration = "static" }, "client_id"},
		{"id with dcr", func(c *Config) { c.ClientID, c.Registration = "id", "dcr" }, "client_id"},
		{"method", func(c *Config) { c.ClientID, c.TokenAuthMethod = "id", "private_key_jwt" }, "token_auth_method"},
		{"basic without secret", func(c *Config) { c.ClientID, c.TokenAuthMethod = "id", "client_secret_basic" }, "client_secret"},
		{"none with secret", func(c *Config) { c.ClientID, c.ClientSecret, c.TokenAuthMethod = "id", secret, "none" }, "client_secret"},
		{"secret with newline", func(c *Config) { c.ClientID, c.ClientSecret = "id", secret+"\n" }, "client_secret"},
		{"id with space", func(c *Config) { c.ClientID = "a b" }, "client_id"},
		{"http endpoint", func(c *Config) { c.TokenEndpoint = "http://as.test/t" }, "token_endpoint"},
		{"loopback not allowed", func(c *Config) { c.TokenEndpoint = "http://127.0.0.1/t" }, "token_endpoint"},
		{"endpoint userinfo", func(c *Config) { c.RevocationEndpoint = "https://u:p@as.test/r" }, "revocation_endpoint"},
		{"endpoint crlf", func(c *Config) { c.AuthorizationEndpoint = "https://as.test/a\r\n" }, "authorization_endpoint"},
		{"issuer query", func(c *Config) { c.Issuer = "https://as.test?x=1" }, "issuer"},
		{"scope", func(c *Config) { c.Scopes = []string{"ok", "not ok"} }, "scopes"},
		{"no discovery", func(c *Config) { c.Discover = nil }, "without discovery"},
	}
	for _, tt := range tests {
		c := base
		tt.change(&c)
		err := c.Validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.field)
		case err != nil:
			assertNoCanary(t, tt.name, err.Error())
		}
	}
}

func TestNewOptions(t *testing.T) {
	st := newMemStore(nil)
	key := make([]byte, 32)
	tests := []struct {
		name string
		opts Options
		cfgs []Config
	}{
		{"no store", Options{PublicURL: publicURL, StateKey: key}, nil},
		{"short key", Options{Store: st, PublicURL: publicURL, StateKey: key[:16]}, nil},
		{"http public", Options{Store: st, PublicURL: "http://gw.example.test", StateKey: key}, nil},
		{"path public", Options{Store: st, PublicURL: publicURL + "/sub", StateKey: key}, nil},
		{"bad config", Options{Store: st, PublicURL: publicURL, StateKey: key}, []Config{{Connector: "x"}}},
		{"twice", Options{Store: st, PublicURL: publicURL, StateKey: key}, []Config{
			{Connector: "x", OAuthConfig: connectors.OAuthConfig{Resource: "https://x.test", Issuer: "https://a.test", AuthorizationEndpoint: "https://a.test/a", TokenEndpoint: "https://a.test/t"}},
			{Connector: "x", OAuthConfig: connectors.OAuthConfig{Resource: "https://x.test", Issuer: "https://a.test", AuthorizationEndpoint: "https://a.test/a", TokenEndpoint: "https://a.test/t"}},
		}},
	}
	for _, tt := range tests {
		if m, err := New(tt.opts, tt.cfgs); err == nil {
			m.Close()
			t.Errorf("%s: accepted", tt.name)
		}
	}
	m, err := New(Options{Store: st, PublicURL: "http://localhost:8080/", StateKey: key}, nil)
	if err != nil {
		t.Fatalf("loopback public URL: %v", err)
	}
	m.Close()
}
