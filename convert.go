package mcpgate

import (
	"fmt"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// newConnector builds a connector from its config. Errors name the field,
// never a secret's value.
func newConnector(repl *caddy.Replacer, cfg ConnectorConfig) (*connectors.Connector, error) {
	if err := connectors.ValidateID(cfg.ID); err != nil {
		return nil, err
	}
	c := &connectors.Connector{ID: cfg.ID, Timeout: time.Duration(cfg.Timeout)}
	var err error
	if c.URL, err = resolveURL(repl, cfg.ID, "url", cfg.URL, connectors.ParseURL); err != nil {
		return nil, err
	}
	if c.API, err = resolveURL(repl, cfg.ID, "api", cfg.API, connectors.ParseAPIURL); err != nil {
		return nil, err
	}
	if c.Auth, err = newAuth(repl, cfg); err != nil {
		return nil, err
	}
	if cfg.Tools != nil {
		if c.Tools, err = newToolPolicy(*cfg.Tools); err != nil {
			return nil, fmt.Errorf("connector %s: tools: %v", cfg.ID, err)
		}
	}
	return c, c.Validate()
}

// resolveURL resolves the placeholders of a connector's URL field and
// checks the result with parse; an empty field is no URL.
func resolveURL(repl *caddy.Replacer, id, field, raw string, parse func(string) (*url.URL, error)) (*url.URL, error) {
	if raw == "" {
		return nil, nil
	}
	v, err := repl.ReplaceOrErr(raw, true, true)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %s: %v", id, field, err)
	}
	u, err := parse(v)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %v", id, err)
	}
	return u, nil
}

// newAuth resolves a connector's credential. An unset {env.*} placeholder
// is an error, not an empty credential.
func newAuth(repl *caddy.Replacer, cfg ConnectorConfig) (connectors.Auth, error) {
	if cfg.Auth == nil {
		return connectors.Auth{}, nil
	}
	resolve := func(field, s string) (string, error) {
		if s == "" {
			return "", nil
		}
		v, err := repl.ReplaceOrErr(s, true, true)
		if err != nil {
			return "", fmt.Errorf("connector %s: auth %s: a placeholder is not set", cfg.ID, field)
		}
		return v, nil
	}
	auth := connectors.Auth{Type: connectors.AuthType(cfg.Auth.Type)}
	var err error
	if auth.Token, err = resolve("token", cfg.Auth.Token); err != nil {
		return auth, err
	}
	if auth.Name, err = resolve("header", cfg.Auth.Header); err != nil {
		return auth, err
	}
	auth.Value, err = resolve("value", cfg.Auth.Value)
	return auth, err
}

// newToolPolicy checks a connector's tools block.
func newToolPolicy(cfg ToolsConfig) (connectors.ToolPolicy, error) {
	p := connectors.ToolPolicy{Allow: cfg.Allow}
	for name, s := range cfg.Operations {
		op, err := connectors.ParseOperation(s)
		if err != nil {
			return p, fmt.Errorf("tool %q: %v", name, err)
		}
		if p.Operations == nil {
			p.Operations = map[string]connectors.Operation{}
		}
		p.Operations[name] = op
	}
	return p, nil
}

// newRule turns a grant's config into a rule.
func newRule(g GrantConfig) (grants.Rule, error) {
	role, err := grants.ParseRole(g.Role)
	if err != nil {
		return grants.Rule{}, err
	}
	if g.Operations != "" {
		if err := checkGrantOperations(g.Operations); err != nil {
			return grants.Rule{}, err
		}
	}
	return grants.Rule{
		Sources: g.Sources, Role: role, Connectors: g.Connectors,
		Tools: g.Tools, Resources: g.Resources, Templates: g.Templates, Prompts: g.Prompts,
		ReadOnly: g.Operations == string(connectors.Read),
	}, nil
}

// originOf returns the origin (scheme://host[:port]) of a URL that
// checkPublicURL accepted.
func originOf(raw string) string {
	u, _ := url.Parse(raw)
	return u.Scheme + "://" + u.Host
}
