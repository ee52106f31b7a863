package connectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The config's types: plain data, in the JSON of the Caddy config. The
// root package embeds them in its modules, so their doc comments are the
// config's documentation.

// Config declares one upstream: an MCP server, an HTTP API, or both
// behind one credential.
type Config struct {
	// ID names the connector in tool names ("<id>_<tool>"), grants and URLs.
	// Required; it matches ^[a-z0-9][a-z0-9-]{0,31}$ and is unique.
	ID string `json:"id"`

	// URL is the upstream's streamable HTTP MCP endpoint. Required unless
	// API is set. Accepts placeholders such as {env.NAME}.
	URL string `json:"url,omitempty"`

	// API is the base URL of the upstream's plain HTTP API, such as
	// https://api.example.com/v1: an absolute http or https URL with a
	// host and no query, credentials or fragment. Agents reach
	// <base>/<path> at /connectors/<id>/api/<path> on the gateway, which
	// injects the connector's credential; a grant must list the connector
	// in its connectors to allow it. Required unless URL is set. Accepts
	// placeholders such as {env.NAME}.
	API string `json:"api,omitempty"`

	// Auth is how mcpgate authenticates to the upstream. Default: no
	// credential.
	Auth *AuthConfig `json:"auth,omitempty"`

	// Timeout bounds each request to the upstream, including a list
	// fan-out: a duration such as "30s", or nanoseconds. Default: 30s.
	Timeout Duration `json:"timeout,omitempty"`

	// Tools narrows which upstream tools enter the catalog and sets their
	// operation facts. Default: every tool, classified by its annotations.
	Tools *ToolsConfig `json:"tools,omitempty"`

	// Title names the connector to people, on the Connectors page and in
	// the admin API. Default: the title of the preset whose URL the
	// connector's matches, if any.
	Title string `json:"title,omitempty"`

	// Description says what the connector offers, for people. Default:
	// the matching preset's description, if any.
	Description string `json:"description,omitempty"`

	// Disabled takes the connector out of service without forgetting it:
	// its tools, resources and prompts leave every list, its calls and API
	// requests are refused, and its tokens are kept, so that enabling it
	// again needs no new consent. An admin may also disable a config
	// connector at run time (PATCH {"enabled": false}); a connector
	// disabled here can be enabled only here. Default: false.
	Disabled bool `json:"disabled,omitempty"`
}

// AuthConfig is how mcpgate authenticates to a connector: a static
// credential or OAuth. Its values accept placeholders such as {env.NAME}
// and {file./path}, and are never logged.
type AuthConfig struct {
	// Type is "bearer" (sends Authorization: Bearer <token>), "header"
	// (sends <header>: <value>) or "oauth" (tokens from a consent flow).
	// Required.
	Type AuthType `json:"type"`

	// OAuth configures the OAuth client, for type "oauth". Default:
	// everything discovered from the upstream.
	OAuth *OAuthConfig `json:"oauth,omitempty"`

	// Token is the bearer token, for type "bearer".
	Token string `json:"token,omitempty"`

	// Header is the header name, for type "header".
	Header string `json:"header,omitempty"`

	// Value is the header value, for type "header".
	Value string `json:"value,omitempty"`
}

// Consent says whose consent a connector's OAuth tokens carry.
type Consent string

// The consent modes.
const (
	// PerUser: each user consents, and calls use that user's token.
	PerUser Consent = "per_user"
	// Shared: an admin consents once, and every granted user's calls use
	// that token.
	Shared Consent = "shared"
)

// OAuthConfig is a connector's OAuth client. mcpgate discovers the
// authorization server from the upstream (RFC 9728, RFC 8414, OpenID
// Connect); the endpoint fields override what discovery finds.
type OAuthConfig struct {
	// Registration is how mcpgate gets a client at the authorization
	// server: "static" (ClientID), "cimd" (client ID metadata document),
	// "dcr" (RFC 7591 dynamic registration) or "auto" (default: static,
	// else cimd where the server supports it, else dcr).
	Registration string `json:"registration,omitempty"`

	// Consent is "per_user" (default: each user consents, and calls use
	// that user's token) or "shared" (an admin consents once, and every
	// granted user's calls use that token).
	Consent Consent `json:"consent,omitempty"`

	// Scopes to request: a list, or one string split on commas and white
	// space. Default: what the upstream's challenge or metadata advertise.
	Scopes Scopes `json:"scopes,omitempty"`

	// Grant is how mcpgate gets the connector's tokens: "authorization_code"
	// (default: a person consents) or "client_credentials" (RFC 6749 §4.4:
	// the static client gets them itself, with no consent at all; it needs
	// client_id, client authentication and shared consent).
	Grant string `json:"grant,omitempty"`

	// ClientID is a pre-registered client id.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is the pre-registered client's secret. Use a
	// placeholder such as {env.NAME}.
	ClientSecret string `json:"client_secret,omitempty" secret:"true"`

	// ClientKey is the pre-registered client's private key, PEM (RSA, or
	// EC on P-256), for token_auth_method private_key_jwt (RFC 7523). Use
	// a placeholder such as {file./etc/mcpgate/client.pem}.
	ClientKey string `json:"client_key,omitempty" secret:"true"`

	// ClientKeyID is the kid of ClientKey's assertions, if the
	// authorization server wants one.
	ClientKeyID string `json:"client_key_id,omitempty"`

	// TokenAuthMethod is how the static client authenticates at the token
	// endpoint: "client_secret_basic" (default with a secret),
	// "client_secret_post", "private_key_jwt" (default with a key) or
	// "none".
	TokenAuthMethod string `json:"token_auth_method,omitempty"`

	// Audience is sent as the audience parameter, for servers that want it.
	Audience string `json:"audience,omitempty"`

	// Resource is the RFC 8707 resource indicator. Default: the
	// connector's URL, or its API for a connector without a URL.
	Resource string `json:"resource,omitempty"`

	// Issuer overrides the authorization server that discovery finds. A
	// static client belongs to it: its secret goes to no other
	// authorization server.
	Issuer string `json:"issuer,omitempty"`

	// AuthorizationEndpoint overrides the discovered endpoint.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`

	// TokenEndpoint overrides the discovered endpoint.
	TokenEndpoint string `json:"token_endpoint,omitempty"`

	// RegistrationEndpoint overrides the discovered endpoint.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`

	// RevocationEndpoint overrides the discovered endpoint.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`

	// ClientName is the client_name that dynamic client registration
	// (RFC 7591) registers with, as the authorization server shows it to
	// the people who consent. Default: "mcpgate <connector id>". A client
	// ID metadata document is the gateway's own, one for every
	// connector, and names it "mcpgate".
	ClientName string `json:"client_name,omitempty"`

	// DPoP is "on" to bind the connector's tokens to a key pair that
	// mcpgate makes for each connection (RFC 9449), or "off". Default: off.
	DPoP string `json:"dpop,omitempty"`

	// InsecureLoopback lets discovered URLs use http:// on loopback
	// addresses. For tests and development only.
	InsecureLoopback bool `json:"insecure_loopback,omitempty"`
}

// ToolsConfig is the config's say over a connector's tools.
type ToolsConfig struct {
	// Allow lists the upstream tool names that enter the catalog. Default:
	// all of them.
	Allow []string `json:"allow,omitempty"`

	// Operations maps upstream tool names to "read" or "write", overriding
	// the upstream's readOnlyHint annotation. A tool with neither counts as
	// a write.
	Operations map[string]Operation `json:"operations,omitempty"`
}

// PresetConfig describes a remote MCP server that connectors added at run
// time may match by URL, taking its OAuth client and description. A
// preset with the id of a built-in one replaces it.
type PresetConfig struct {
	// ID names the preset, with the connector id grammar.
	ID string `json:"id"`

	// URL is the server's MCP endpoint.
	URL string `json:"url"`

	// ClientID is an OAuth client registered with the server's
	// authorization server. Placeholders such as {env.*} are expanded.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is that client's secret. Placeholders such as {env.*}
	// are expanded. Never shown by the admin API.
	ClientSecret string `json:"client_secret,omitempty"`

	// Title describes the server to people.
	Title string `json:"title,omitempty"`

	// Description says what the server offers.
	Description string `json:"description,omitempty"`
}

// Duration is a length of time in the config: a string such as "30s",
// "1h30m" or "1d" (24 hours), or a number of nanoseconds, as Caddy's own
// durations are written. It encodes as nanoseconds, as they do.
type Duration time.Duration

// days is a count of days in a duration string, which Go's syntax lacks.
var days = regexp.MustCompile(`([0-9]+(?:\.[0-9]*)?)d`)

// UnmarshalJSON accepts a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v time.Duration
	var err error
	if s, ok := strings.CutPrefix(string(b), `"`); ok {
		s = strings.TrimSuffix(s, `"`)
		if len(s) > 1024 {
			return errors.New("duration: too long")
		}
		s = days.ReplaceAllStringFunc(s, func(n string) string {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(n, "d"), 64)
			return strconv.FormatFloat(f*24, 'f', -1, 64) + "h"
		})
		v, err = time.ParseDuration(s)
	} else {
		err = json.Unmarshal(b, &v)
	}
	*d = Duration(v)
	return err
}

// Expander resolves the placeholders of one config value, such as
// {env.NAME}; an error means one is not set.
type Expander func(string) (string, error)

// Literal is the Expander of values that an admin API caller sends,
// taken as they are: one that holds a placeholder is refused, since such
// a caller may not read the server's environment or files through it.
func Literal(s string) (string, error) {
	if open := strings.IndexByte(s, '{'); open >= 0 && strings.IndexByte(s[open:], '}') > 0 {
		return "", errNoPlaceholders
	}
	return s, nil
}

// errNoPlaceholders is Literal's refusal.
var errNoPlaceholders = errors.New("placeholders are not allowed here")

// expandFields resolves the placeholders of the named fields in place.
// Errors name the field, never its value, which may be a secret.
func expandFields(expand Expander, fields map[string]*string) error {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		f := fields[name]
		if *f == "" {
			continue
		}
		v, err := expand(*f)
		switch {
		case errors.Is(err, errNoPlaceholders):
			return fmt.Errorf("%s: %v", name, err)
		case err != nil:
			// Not err itself: a replacer's error may quote the value.
			return fmt.Errorf("%s: a placeholder is not set", name)
		}
		*f = v
	}
	return nil
}

// Expanded returns c with the placeholders of its URLs and credentials
// resolved. Errors name the connector and the field.
func (c Config) Expanded(expand Expander) (Config, error) {
	out := c
	if err := expandFields(expand, map[string]*string{"url": &out.URL, "api": &out.API}); err != nil {
		return c, fmt.Errorf("connector %s: %v", c.ID, err)
	}
	if c.Auth == nil {
		return out, nil
	}
	auth := *c.Auth
	out.Auth = &auth
	if err := expandFields(expand, map[string]*string{"auth token": &auth.Token, "auth header": &auth.Header, "auth value": &auth.Value}); err != nil {
		return c, fmt.Errorf("connector %s: %v", c.ID, err)
	}
	if c.Auth.OAuth == nil {
		return out, nil
	}
	o, err := c.Auth.OAuth.Expanded(expand)
	if err != nil {
		return c, fmt.Errorf("connector %s: auth oauth %v", c.ID, err)
	}
	auth.OAuth = &o
	return out, nil
}

// Expanded returns o with the placeholders of its client and endpoints
// resolved.
func (o OAuthConfig) Expanded(expand Expander) (OAuthConfig, error) {
	out := o
	err := expandFields(expand, map[string]*string{
		"client_id": &out.ClientID, "client_secret": &out.ClientSecret, "token_auth_method": &out.TokenAuthMethod,
		"client_key": &out.ClientKey, "client_key_id": &out.ClientKeyID,
		"audience": &out.Audience, "resource": &out.Resource, "issuer": &out.Issuer,
		"authorization_endpoint": &out.AuthorizationEndpoint, "token_endpoint": &out.TokenEndpoint,
		"registration_endpoint": &out.RegistrationEndpoint, "revocation_endpoint": &out.RevocationEndpoint,
		"client_name": &out.ClientName,
	})
	return out, err
}

// Expanded returns p with the placeholders of its URL and client
// resolved.
func (p PresetConfig) Expanded(expand Expander) (PresetConfig, error) {
	out := p
	if err := expandFields(expand, map[string]*string{"url": &out.URL, "client_id": &out.ClientID, "client_secret": &out.ClientSecret}); err != nil {
		return p, fmt.Errorf("preset %s: %v", p.ID, err)
	}
	return out, nil
}

// OAuth returns the connector's OAuth client config, or nil when it does
// not use OAuth.
func (c Config) OAuth() *OAuthConfig {
	switch {
	case c.Auth == nil || c.Auth.Type != AuthOAuth:
		return nil
	case c.Auth.OAuth == nil:
		return new(OAuthConfig)
	}
	return c.Auth.OAuth
}

// Build checks c, whose placeholders are resolved, and returns the
// connector it declares. Errors name the field, never a secret's value.
func (c Config) Build() (*Connector, error) {
	if err := ValidateID(c.ID); err != nil {
		return nil, err
	}
	out := &Connector{ID: c.ID, Timeout: time.Duration(c.Timeout), Title: c.Title, Description: c.Description, Disabled: c.Disabled}
	var err error
	if c.URL != "" {
		if out.URL, err = ParseURL(c.URL); err != nil {
			return nil, fmt.Errorf("connector %s: %v", c.ID, err)
		}
	}
	if c.API != "" {
		if out.API, err = ParseAPIURL(c.API); err != nil {
			return nil, fmt.Errorf("connector %s: %v", c.ID, err)
		}
	}
	if a := c.Auth; a != nil {
		out.Auth = Auth{Type: a.Type, Token: a.Token, Name: a.Header, Value: a.Value}
	}
	if t := c.Tools; t != nil {
		out.Tools = ToolPolicy{Allow: t.Allow, Operations: t.Operations}
	}
	return out, out.Validate()
}
