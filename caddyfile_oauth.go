package mcpgate

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// parseStorage parses the storage option. Syntax:
//
//	storage badger [<path>]
//	storage postgres {
//		dsn <connection string>
//	}
func parseStorage(d *caddyfile.Dispenser) (*StorageConfig, error) {
	args := d.RemainingArgs()
	switch {
	case len(args) == 0:
		return nil, d.Err("storage needs a backend: badger or postgres")
	case args[0] == "postgres":
		return parsePostgres(d, args[1:])
	case args[0] != "badger":
		return nil, d.Errf("storage backend %q is not supported; use badger or postgres", args[0])
	case len(args) > 2:
		return nil, d.Err("storage badger takes at most one value: the database directory")
	}
	s := &StorageConfig{Backend: args[0]}
	if len(args) == 2 {
		s.Path = args[1]
	}
	return s, nil
}

// parsePostgres parses the block of `storage postgres`. The DSN is not
// named in any error: it may hold a password, which belongs in a
// placeholder such as {env.MCPGATE_PG_DSN}.
func parsePostgres(d *caddyfile.Dispenser, args []string) (*StorageConfig, error) {
	if len(args) > 0 {
		return nil, d.Err("storage postgres takes its settings in a block: dsn <connection string>")
	}
	s := &StorageConfig{Backend: "postgres"}
	start := d.Token()
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "dsn":
			if err := setString(d, seen, &s.DSN, nonEmpty("dsn")); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unrecognized storage postgres subdirective %q", d.Val())
		}
	}
	if s.DSN == "" {
		return nil, errAt(start, "storage postgres needs dsn, the connection string (best as {env.MCPGATE_PG_DSN})")
	}
	return s, nil
}

// addSealKey appends one seal_key line to the ring. A literal key is
// checked here; the error never repeats it, and names the key by its
// position instead. A placeholder is checked when it is resolved, at
// provisioning. Placeholders are the way to give a key: a literal one is
// written into Caddy's autosaved config and answered by GET /config/.
// Syntax:
//
//	seal_key <base64 of 32 bytes, or a placeholder>
func addSealKey(d *caddyfile.Dispenser, ring *[]string) error {
	var v string
	if !d.AllArgs(&v) {
		return d.Err("seal_key takes one value: a base64 key or a placeholder such as {env.MCPGATE_SEAL_KEY}")
	}
	if !hasPlaceholder(v) {
		if _, err := store.ParseKey(v); err != nil {
			return d.Errf("seal_key %d: %v", len(*ring)+1, err)
		}
	}
	// A repeated line would look like a rotation and be none; the ring
	// refuses a repeated key too, but only once placeholders resolve.
	for i, prev := range *ring {
		if prev == v {
			return d.Errf("seal_key %d repeats seal_key %d", len(*ring)+1, i+1)
		}
	}
	*ring = append(*ring, v)
	return nil
}

// checkOrigin accepts an origin: scheme://host[:port] with nothing after.
// A consent flow's redirect_url is allowed by its origin, compared
// exactly; a path here would read as a prefix match, the open redirector
// that RFC 9700 §4.11.1 forbids. User info is refused because
// https://app.example.com@evil.example names evil.example.
func checkOrigin(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("allowed_redirects: %q must be an origin such as https://app.example.com", v)
	}
	return nil
}

// oauthStrings maps the single-valued keywords of an oauth block to their
// fields, so that they share one parser with one duplicate check.
func oauthStrings(o *connectors.OAuthConfig) map[string]*string {
	return map[string]*string{
		"registration":           &o.Registration,
		"client_id":              &o.ClientID,
		"client_secret":          &o.ClientSecret,
		"client_key":             &o.ClientKey,
		"client_key_id":          &o.ClientKeyID,
		"token_auth_method":      &o.TokenAuthMethod,
		"audience":               &o.Audience,
		"resource":               &o.Resource,
		"issuer":                 &o.Issuer,
		"authorization_endpoint": &o.AuthorizationEndpoint,
		"token_endpoint":         &o.TokenEndpoint,
		"registration_endpoint":  &o.RegistrationEndpoint,
		"revocation_endpoint":    &o.RevocationEndpoint,
		"client_name":            &o.ClientName,
		"dpop":                   &o.DPoP,
		"grant":                  &o.Grant,
	}
}

// parseOAuth parses the block of `auth oauth`. The client secret and key
// are never named in an error. Every keyword but insecure_loopback overrides what
// discovery would find (RFC 9728, then RFC 8414, then OpenID Connect).
// How the keywords fit together is checked at the end of the block, where
// the error points at its first line. Syntax:
//
//	auth oauth {
//		registration      auto|static|cimd|dcr
//		consent           per_user|shared
//		scopes            <scope...>
//		client_id         <id>
//		client_secret     <secret>
//		client_key        <PEM private key, best a placeholder such as {file./etc/mcpgate/client.pem}>
//		client_key_id     <kid>
//		token_auth_method client_secret_basic|client_secret_post|private_key_jwt|none
//		audience          <audience>
//		resource          <url>
//		issuer            <url>
//		authorization_endpoint|token_endpoint|registration_endpoint|revocation_endpoint <url>
//		client_name       <name>
//		dpop              on|off
//		grant             authorization_code|client_credentials
//		insecure_loopback
//	}
//
// Under grant client_credentials, consent is shared unless the block
// says otherwise (which is then refused): the client's one token serves
// every granted user.
func parseOAuth(d *caddyfile.Dispenser) (*connectors.OAuthConfig, error) {
	o := new(connectors.OAuthConfig)
	start := d.Token()
	fields := oauthStrings(o)
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		kw := d.Val()
		var err error
		switch dst, ok := fields[kw]; {
		case ok:
			err = setString(d, seen, dst, oauthCheck(kw))
		case kw == "consent":
			err = setString(d, seen, &o.Consent, oauthCheck(kw))
		case kw == "scopes":
			if err = once(d, seen); err == nil {
				err = appendScopes(d, &o.Scopes)
			}
		case kw == "insecure_loopback":
			err = setFlag(d, seen, &o.InsecureLoopback)
		default:
			return nil, d.Errf("unrecognized auth oauth subdirective %q", kw)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(seen) == 0 {
		return nil, nil // a bare "auth oauth": everything is discovered
	}
	if o.Grant == oauthflow.GrantClientCredentials && o.Consent == "" {
		o.Consent = connectors.Shared
	}
	if err := checkOAuth(o); err != nil {
		return nil, errAt(start, "auth oauth: %v", err)
	}
	return o, nil
}

// appendScopes reads scopes given as several values, or as one quoted
// value separated by spaces (as the OAuth scope parameter is written, RFC
// 6749 §3.3), commas or newlines: grants.SplitList splits them, as every
// other surface does. Each must be a scope-token of that section, so that
// a mistake fails `caddy validate` rather than the first consent.
func appendScopes(d *caddyfile.Dispenser, dst *connectors.Scopes) error {
	*dst = append(*dst, grants.SplitList(strings.Join(d.RemainingArgs(), " "))...)
	if len(*dst) == 0 {
		return d.ArgErr()
	}
	for _, s := range *dst {
		if !discovery.ValidScope(s) {
			return d.Errf("scopes: %q is not a valid scope", s)
		}
	}
	return nil
}

// oauthCheck returns the check of one single-valued oauth keyword. Only
// enumerations and URLs are quoted in its errors; client_id,
// client_secret, audience and client_name are checked for presence alone
// here (a secret is never echoed), the rest at the end of the block.
func oauthCheck(kw string) func(string) error {
	oneOf := func(allowed ...string) func(string) error {
		return func(v string) error {
			if slices.Contains(allowed, v) {
				return nil
			}
			return fmt.Errorf("%s %q must be one of %s", kw, v, strings.Join(allowed, ", "))
		}
	}
	switch kw {
	case "registration":
		return oneOf("auto", "static", "cimd", "dcr")
	case "consent":
		return oneOf("per_user", "shared")
	case "dpop":
		return oneOf(oauthflow.DPoPOn, oauthflow.DPoPOff)
	case "grant":
		return oneOf(oauthflow.GrantAuthorizationCode, oauthflow.GrantClientCredentials)
	case "token_auth_method":
		return oneOf("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
	case "client_id", "client_secret", "client_key", "client_key_id", "audience", "client_name":
		return nonEmpty(kw)
	}
	return func(v string) error { return checkEndpoint(kw, v) }
}

// checkEndpoint accepts an absolute http(s) URL without credentials or a
// fragment, unless a placeholder makes it known only at provisioning.
// Credentials in a URL would go out with every request and into logs; an
// endpoint URI must not have a fragment (RFC 6749 §3.1, §3.2). http is let
// through here: whether it is allowed depends on insecure_loopback, which
// may come later in the block, and oauthflow refuses it at provisioning
// unless the host is loopback and insecure_loopback is set.
func checkEndpoint(kw, v string) error {
	if hasPlaceholder(v) {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s %q must be an absolute http or https URL without credentials or fragment", kw, v)
	}
	return nil
}

// checkOAuth checks how the options of an oauth block fit together, by
// the rules the OAuth client applies when it is provisioned. A client key
// given literally is parsed here; one from a placeholder at provisioning.
func checkOAuth(o *connectors.OAuthConfig) error {
	cfg := oauthflow.Config{OAuthConfig: *o}
	if err := cfg.ValidateClient(); err != nil {
		return err
	}
	if err := cfg.ValidateGrant(); err != nil {
		return err
	}
	if hasPlaceholder(o.ClientKey) {
		return nil
	}
	return cfg.ValidateKey()
}
