// Package connectors defines the remote MCP servers mcpgate serves to agents:
// their identity, where they live, how mcpgate authenticates to them and which
// of their tools enter the catalog. It knows nothing of Caddy.
package connectors

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Reserved is the id that no connector may take: the gateway's own built-in
// tools are named "mcpgate_<tool>".
const Reserved = "mcpgate"

// DefaultTimeout bounds one upstream request when a connector sets none.
const DefaultTimeout = 30 * time.Second

// idPattern is the contract's id grammar. It has no underscore, so that
// "<connector>_<tool>" always splits at the first underscore.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Connector is one upstream MCP server, ready to use.
type Connector struct {
	// ID names the connector in tool names, grants and URLs.
	ID string
	// URL is the upstream's streamable HTTP MCP endpoint.
	URL *url.URL
	// Auth is how mcpgate authenticates to the upstream.
	Auth Auth
	// Timeout bounds each upstream request.
	Timeout time.Duration
	// Tools narrows and classifies the upstream's tools.
	Tools ToolPolicy
}

// Operation classifies a tool as reading or writing.
type Operation string

// The operations a tool can have. A tool with no fact counts as a write.
const (
	Read  Operation = "read"
	Write Operation = "write"
)

// ToolPolicy is the config's say over a connector's tools.
type ToolPolicy struct {
	// Allow lists the upstream tool names that enter the catalog; empty
	// means all of them.
	Allow []string
	// Operations overrides the upstream's annotations for the named tools.
	Operations map[string]Operation
}

// Allows reports whether the upstream tool name enters the catalog.
func (p ToolPolicy) Allows(name string) bool {
	if len(p.Allow) == 0 {
		return true
	}
	for _, a := range p.Allow {
		if a == name {
			return true
		}
	}
	return false
}

// Operation returns the tool's operation: the config's fact when it has one,
// else read only when the upstream says readOnlyHint is true.
func (p ToolPolicy) Operation(name string, readOnlyHint bool) Operation {
	if op, ok := p.Operations[name]; ok {
		return op
	}
	if readOnlyHint {
		return Read
	}
	return Write
}

// ValidateID reports whether id is a well-formed connector id.
func ValidateID(id string) error {
	if id == Reserved {
		return fmt.Errorf("connector id %q is reserved for the gateway's own tools", id)
	}
	if !idPattern.MatchString(id) {
		return fmt.Errorf("connector id %q must match %s (lowercase letters, digits and '-', at most 32)", id, idPattern)
	}
	return nil
}

// ParseURL parses and checks an upstream MCP endpoint URL.
func ParseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q: has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("url %q: credentials belong in the auth line, not the url", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("url %q: must not have a fragment", raw)
	}
	return u, nil
}

// ParseOperation parses "read" or "write".
func ParseOperation(s string) (Operation, error) {
	switch op := Operation(s); op {
	case Read, Write:
		return op, nil
	}
	return "", fmt.Errorf("operation %q must be read or write", s)
}

// Validate checks a connector as a whole.
func (c *Connector) Validate() error {
	if err := ValidateID(c.ID); err != nil {
		return err
	}
	if c.URL == nil {
		return fmt.Errorf("connector %s: url is required", c.ID)
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("connector %s: %w", c.ID, err)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("connector %s: timeout must not be negative", c.ID)
	}
	for name, op := range c.Tools.Operations {
		if _, err := ParseOperation(string(op)); err != nil {
			return fmt.Errorf("connector %s: tool %q: %w", c.ID, name, err)
		}
	}
	return nil
}

// Header returns the request headers that carry the connector's static
// credential, or nil when it has none.
func (c *Connector) Header() http.Header {
	return c.Auth.Header()
}

// trimmed reports whether s has no leading or trailing white space.
func trimmed(s string) bool { return strings.TrimSpace(s) == s }
