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

// Connector is one upstream, ready to use: an MCP server, an HTTP API, or
// both behind one credential.
type Connector struct {
	// ID names the connector in tool names, grants and URLs.
	ID string
	// URL is the upstream's streamable HTTP MCP endpoint, or nil for a
	// connector that is only an HTTP API.
	URL *url.URL
	// API is the base URL of the upstream's plain HTTP API, or nil for a
	// connector that is only an MCP server. Agents reach the paths under
	// it through the gateway, with the connector's credential injected.
	API *url.URL
	// Auth is how mcpgate authenticates to the upstream.
	Auth Auth
	// Timeout bounds each upstream request; zero means DefaultTimeout
	// (see RequestTimeout).
	Timeout time.Duration
	// Tools narrows and classifies the upstream's tools.
	Tools ToolPolicy
	// Prompts narrows and pins the upstream's prompts, when a tool
	// selection has a prompt part; the zero value serves them all.
	Prompts PromptPolicy
	// Title and Description describe the connector to people: its own,
	// or its preset's.
	Title, Description string
	// Disabled takes the connector out of service: none of its items is
	// listed, and every call, read and API request is refused before any
	// credential is used (see Config.Disabled).
	Disabled bool
}

// ErrDisabled is what every refusal of a disabled connector wraps.
var ErrDisabled = errors.New("disabled by an admin")

// DisabledError is the refusal of a request to a disabled connector.
// Its words are the same on every surface: an agent's call, a connector's
// own endpoint, an API request, a consent.
func DisabledError(id string) error {
	return fmt.Errorf("connector %s is %w", id, ErrDisabled)
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
	// Allow lists the upstream tool names that enter the catalog; nil
	// means all of them, and an empty list none.
	Allow []string
	// Operations overrides the upstream's annotations for the named tools.
	Operations map[string]Operation
	// Pins maps a tool name to the hash of its approved definition (see
	// ToolDefinition). A pinned tool whose definition changed upstream is
	// left out of the catalog until an admin approves it again.
	Pins map[string]string
}

// Allows reports whether the upstream tool name enters the catalog.
func (p ToolPolicy) Allows(name string) bool {
	if p.Allow == nil {
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
	return parseHTTPURL("url", raw)
}

// ParseAPIURL parses and checks the base URL of an upstream HTTP API. It
// has no query, since agents send their own with each request and the
// gateway does not merge two.
func ParseAPIURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("api is required")
	}
	u, err := parseHTTPURL("api", raw)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("api %q: must not have a query; agents send theirs with each request", raw)
	}
	return u, nil
}

// parseHTTPURL parses an absolute http or https URL with a host, without
// credentials or fragment, for the named field. Errors redact a password.
func parseHTTPURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v", field, raw, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s %q: scheme must be http or https", field, raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s %q: has no host", field, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s %q: credentials belong in the auth line, not the %s", field, u.Redacted(), field)
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return nil, fmt.Errorf("%s %q: must not have a fragment", field, raw)
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
	if c.URL == nil && c.API == nil {
		return fmt.Errorf("connector %s: url is required unless api is set (url: an MCP endpoint; api: an HTTP API base)", c.ID)
	}
	if c.API != nil {
		if _, err := ParseAPIURL(c.API.String()); err != nil {
			return fmt.Errorf("connector %s: %w", c.ID, err)
		}
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

// Resource returns the URL that stands for the connector at its
// authorization server (RFC 8707): its MCP endpoint, or the base of its
// API when it has no MCP endpoint.
func (c *Connector) Resource() *url.URL {
	if c.URL != nil {
		return c.URL
	}
	return c.API
}

// Header returns the request headers that carry the connector's static
// credential, or nil when it has none.
func (c *Connector) Header() http.Header {
	return c.Auth.Header()
}

// trimmed reports whether s has no leading or trailing white space.
func trimmed(s string) bool { return strings.TrimSpace(s) == s }

// RequestTimeout is how long one upstream request may take: Timeout, or
// DefaultTimeout when it is not set.
func (c *Connector) RequestTimeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}
