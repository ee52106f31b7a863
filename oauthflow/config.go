package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// Consent says whose consent a connector's tokens carry.
type Consent = connectors.Consent

// The consent modes.
const (
	// Shared: an admin consents once and every caller uses that
	// grant.
	Shared = connectors.Shared
	// PerUser: each user consents for themselves. The default.
	PerUser = connectors.PerUser
)

// The registration modes of Config.Registration.
const (
	// RegistrationAuto uses a static client if one is configured, else a
	// client ID metadata document if the server supports one, else
	// dynamic registration. The default.
	RegistrationAuto = "auto"
	// RegistrationStatic uses Config.ClientID (and ClientSecret).
	RegistrationStatic = "static"
	// RegistrationCIMD uses mcpgate's client ID metadata document.
	RegistrationCIMD = "cimd"
	// RegistrationDCR registers with RFC 7591 dynamic client registration.
	RegistrationDCR = "dcr"
)

// The client authentication methods of RFC 7591 §2 that mcpgate speaks.
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// Config is one connector's OAuth client: the config's settings, with
// Resource always set, and what it needs to reach the authorization
// server. Its ClientSecret and ClientKey never appear in fmt or JSON
// output.
type Config struct {
	// Connector is the connector's id. Required.
	Connector string `json:"connector"`
	// OAuthConfig holds the settings. Resource is required here: it is
	// sent as the RFC 8707 resource in every authorization and token
	// request, unless the resource's protected-resource metadata names
	// itself with a prefix of it (RFC 9728 §3.3), which is then sent
	// instead.
	connectors.OAuthConfig
	// HTTP makes every call to this connector's authorization server. It
	// should be the egress-guarded client; nil means a plain one. Redirects
	// are never followed whatever its CheckRedirect says (RFC 9700 §4.12).
	HTTP *http.Client `json:"-"`
	// Discover finds the authorization server of a resource. It may be
	// nil when Issuer, AuthorizationEndpoint and TokenEndpoint are set.
	Discover func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) `json:"-"`
	// Binding is what the connector's tokens are bound to
	// (connectors.TokenBinding), which each grant records: a grant
	// recorded under another binding serves no call, and a consent
	// started under another completes nothing, so that tokens obtained
	// for the connector before an admin changed it never reach it as it
	// is now. Empty: a grant is checked by its resource alone.
	Binding string `json:"binding,omitempty"`
	// Disabled: an admin disabled the connector. No consent starts or
	// completes for it, so that none stores tokens while it is off.
	Disabled bool `json:"disabled,omitempty"`
}

// Validate checks the settings. Its errors name the field, and never echo
// the client secret.
func (c Config) Validate() error {
	if err := connectors.ValidateID(c.Connector); err != nil {
		return err
	}
	if _, err := connectors.ParseURL(c.Resource); err != nil {
		return fmt.Errorf("resource: %v", err)
	}
	if err := c.ValidateKey(); err != nil {
		return err
	}
	for _, check := range []func() error{c.validateModes, c.ValidateClient, c.ValidateGrant, c.validateEndpoints, c.validateScopes} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) validateModes() error {
	switch c.Registration {
	case "", RegistrationAuto, RegistrationStatic, RegistrationCIMD, RegistrationDCR:
	default:
		return fmt.Errorf("registration %q must be auto, static, cimd or dcr", c.Registration)
	}
	switch c.Consent {
	case "", Shared, PerUser:
	default:
		return fmt.Errorf("consent %q must be shared or per_user", c.Consent)
	}
	switch c.DPoP {
	case "", DPoPOn, DPoPOff:
	default:
		return fmt.Errorf("dpop %q must be on or off", c.DPoP)
	}
	if c.Discover == nil && (c.Issuer == "" || (c.AuthorizationEndpoint == "" && c.Grant != GrantClientCredentials) || c.TokenEndpoint == "") {
		return errors.New("without discovery, issuer, authorization_endpoint and token_endpoint are required")
	}
	return nil
}

// maxClientName bounds client_name: a name for people on a consent
// screen, not a document.
const maxClientName = 128

// ValidateClient checks how the client settings fit together: a static
// client's id, secret and token endpoint auth method, and the registration
// mode. Validate runs it; a config parser can run it alone.
func (c Config) ValidateClient() error {
	switch {
	case c.ClientID == "" && (c.ClientSecret != "" || c.TokenAuthMethod != ""):
		return errors.New("client_secret and token_auth_method need client_id")
	case c.ClientID == "" && c.ClientKey != "":
		return errors.New("client_key needs client_id")
	case c.ClientID == "" && c.Registration == RegistrationStatic:
		return errors.New("registration static needs client_id")
	case c.ClientID != "" && (c.Registration == RegistrationCIMD || c.Registration == RegistrationDCR):
		return fmt.Errorf("client_id is set, but registration is %s", c.Registration)
	case c.ClientID != "" && !visible(c.ClientID):
		return fmt.Errorf("client_id %q has spaces or control characters", c.ClientID)
	case !httpguts.ValidHeaderFieldValue(c.ClientSecret):
		return errors.New("client_secret has control characters")
	case !validKeyID(c.ClientKeyID):
		return fmt.Errorf("client_key_id must be at most %d characters, without spaces or control characters", maxKeyID)
	case !httpguts.ValidHeaderFieldValue(c.Audience):
		return errors.New("audience has control characters")
	case len(c.ClientName) > maxClientName || !httpguts.ValidHeaderFieldValue(c.ClientName) || strings.TrimSpace(c.ClientName) != c.ClientName:
		return fmt.Errorf("client_name must be at most %d characters, without control characters or surrounding white space", maxClientName)
	}
	return c.validateAuthMethod()
}

// validateAuthMethod checks that the static client has what its
// token_auth_method authenticates with, and nothing it would not use: a
// client authenticates with a secret or a key, never both.
func (c Config) validateAuthMethod() error {
	switch m := c.TokenAuthMethod; {
	case m == "" && c.ClientKey != "" && c.ClientSecret != "":
		return errors.New("client_secret and client_key are both set: a client authenticates with one of them")
	case m == "":
	case m != AuthMethodBasic && m != AuthMethodPost && m != AuthMethodPrivateKeyJWT && m != AuthMethodNone:
		return fmt.Errorf("token_auth_method %q must be client_secret_basic, client_secret_post, private_key_jwt or none", m)
	case (m == AuthMethodBasic || m == AuthMethodPost) && c.ClientSecret == "":
		return fmt.Errorf("token_auth_method %s needs client_secret (is its placeholder set?)", m)
	case m == AuthMethodPrivateKeyJWT && c.ClientKey == "":
		return fmt.Errorf("token_auth_method %s needs client_key (is its placeholder set?)", m)
	case (m == AuthMethodNone || m == AuthMethodPrivateKeyJWT) && c.ClientSecret != "":
		return fmt.Errorf("client_secret is set, but token_auth_method is %s", m)
	case m != AuthMethodPrivateKeyJWT && c.ClientKey != "":
		return fmt.Errorf("client_key is set, but token_auth_method is %s", m)
	}
	return nil
}

// ValidateKey checks that client_key is a private key mcpgate can sign
// with. Validate runs it; a config parser runs it on a key given
// literally, as a placeholder's value is known only at provisioning. Its
// errors never quote the key.
func (c Config) ValidateKey() error {
	if c.ClientKey == "" {
		return nil
	}
	_, err := parseClientKey(c.ClientKey)
	return err
}

func (c Config) validateEndpoints() error {
	for _, e := range c.endpoints() {
		if err := checkEndpoint(e.name, e.url, c.InsecureLoopback); err != nil {
			return err
		}
	}
	if u, _ := url.Parse(c.Issuer); u != nil && u.RawQuery != "" {
		return errors.New("issuer must not have a query (RFC 8414 §2)")
	}
	return nil
}

func (c Config) validateScopes() error {
	for _, s := range c.Scopes {
		if !discovery.ValidScope(s) {
			return fmt.Errorf("scopes: %q is not a valid scope", s)
		}
	}
	return nil
}

// endpoints lists the configured authorization server URLs by field name.
func (c Config) endpoints() []struct{ name, url string } {
	return []struct{ name, url string }{
		{"issuer", c.Issuer},
		{"authorization_endpoint", c.AuthorizationEndpoint},
		{"token_endpoint", c.TokenEndpoint},
		{"registration_endpoint", c.RegistrationEndpoint},
		{"revocation_endpoint", c.RevocationEndpoint},
	}
}

// withDefaults fills in the defaults that the fields document.
func (c Config) withDefaults() Config {
	if c.Registration == "" {
		c.Registration = RegistrationAuto
	}
	if c.Consent == "" {
		c.Consent = PerUser
	}
	if c.ClientID != "" && c.TokenAuthMethod == "" {
		c.TokenAuthMethod = AuthMethodNone
		if c.ClientSecret != "" {
			c.TokenAuthMethod = AuthMethodBasic
		}
		if c.ClientKey != "" {
			c.TokenAuthMethod = AuthMethodPrivateKeyJWT
		}
	}
	return c
}

// configView is Config without its methods, for redacted output.
type configView Config

// Format prints the config with its client secret redacted.
func (c Config) Format(f fmt.State, verb rune) { formatRedacted(f, verb, configView(c)) }

// MarshalJSON encodes the config with its client secret redacted.
func (c Config) MarshalJSON() ([]byte, error) { return marshalRedacted(configView(c)) }

// checkEndpoint checks an authorization server URL: https (or http on
// loopback when allowed), no user info, no fragment, nothing that could
// split a header or a command line. Empty is fine: the caller
// decides what is required.
func checkEndpoint(name, raw string, insecureLoopback bool) error {
	if raw == "" {
		return nil
	}
	if len(raw) > 2048 || !visible(raw) {
		return fmt.Errorf("%s is too long or has spaces or control characters", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %v", name, raw, err)
	}
	switch {
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%s %q is not an absolute URL", name, raw)
	case u.User != nil:
		return fmt.Errorf("%s must not carry credentials", name)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%s %q must not have a fragment", name, raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && insecureLoopback && egress.IsLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%s %q must be an https URL", name, raw)
}

// visible reports whether s is non-empty printable ASCII without spaces.
func visible(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// NewConfig builds connector c's OAuth client from the config's settings
// o, whose placeholders are resolved: the resource defaults to the
// connector's, and every call to the authorization server goes through
// the egress guard. The admin's own URLs may be private or plain HTTP;
// what discovery learns from the upstream may not.
func NewConfig(c *connectors.Connector, o connectors.OAuthConfig) (Config, error) {
	cfg := Config{Connector: c.ID, OAuthConfig: o, Binding: connectors.TokenBinding(c, o), Disabled: c.Disabled}
	if cfg.Resource == "" {
		cfg.Resource = c.Resource().String()
	}
	if cfg.Consent == "" {
		cfg.Consent = PerUser
	}
	policy := egress.Policy{AllowLoopbackHTTP: o.InsecureLoopback, Trusted: []string{egress.Authority(c.Resource())}}
	for _, e := range cfg.endpoints() {
		if u, err := url.Parse(e.url); err == nil && e.url != "" {
			policy.Trusted = append(policy.Trusted, egress.Authority(u))
		}
	}
	cfg.HTTP = egress.Client(policy)
	cfg.Discover = func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
		return discovery.Discover(ctx, cfg.HTTP, resource, discovery.Options{Challenge: ch, Policy: policy, Issuer: cfg.Issuer})
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("connector %s: auth oauth: %v", c.ID, err)
	}
	return cfg, nil
}
