package mcpgate

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("mcpgate", parseGlobal)
	httpcaddyfile.RegisterHandlerDirective("mcpgate", parseHandler)
	// Before reverse_proxy, so that a site that also proxies everything
	// else still reaches the gateway's paths: the handler passes what it
	// does not own to the next one.
	httpcaddyfile.RegisterDirectiveOrder("mcpgate", httpcaddyfile.Before, "reverse_proxy")
}

// parseGlobal sets up the mcpgate app from the global option of the same
// name. Every value is checked here, so that `caddy validate` reports a
// mistake with its file and line. Syntax:
//
//	mcpgate {
//		public_url        <url>
//		allowed_hosts     <host>...
//		allowed_redirects <origin>...
//		identity          <placeholder or literal>
//		groups            <placeholder>
//		tool_separator    _|__
//		max_request_body  <size>
//		list_cache_ttl    <duration>
//		storage           badger [<path>]
//		seal_key          <key or placeholder>
//		approvers         <src>...
//		approval_ttl      <duration>
//		approval_webhook  <url>
//		self_approve
//		connector <id> {
//			...
//		}
//		preset <id> {
//			...
//		}
//		grant {
//			...
//		}
//	}
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // consume option name
	// Caddy hands a repeated global option the value of the one before.
	// Merging two blocks would leave open which public_url or identity
	// wins, so a second block is refused.
	if existing != nil {
		return nil, d.Err("mcpgate is already configured; use one mcpgate block")
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	app := new(App)
	seen := make(map[string]bool)
	defined := make(map[string]caddyfile.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "public_url":
			err = setString(d, seen, &app.PublicURL, checkPublicURL)
		case "identity":
			err = setString(d, seen, &app.Identity, nonEmpty("identity"))
		case "groups":
			err = setString(d, seen, &app.Groups, nonEmpty("groups"))
		case "tool_separator":
			err = setString(d, seen, &app.ToolSeparator, checkSeparator)
		case "max_request_body":
			err = setSize(d, seen, &app.MaxRequestBody)
		case "list_cache_ttl":
			err = setDuration(d, seen, &app.ListCacheTTL)
		case "storage":
			if err = once(d, seen); err == nil {
				app.Storage, err = parseStorage(d)
			}
		case "seal_key":
			err = addSealKey(d, &app.SealKeys)
		case "allowed_redirects":
			err = appendUnique(d, &app.AllowedRedirects, checkOrigin)
		case "allowed_hosts":
			err = appendUnique(d, &app.AllowedHosts, checkHost)
		case "connector":
			var c connectors.Config
			c, err = parseConnector(d, defined)
			app.Connectors = append(app.Connectors, c)
		case "builtin_presets":
			var v string
			if v, err = single(d, seen); err == nil {
				switch v {
				case "on":
				case "off":
					app.DisableBuiltinPresets = true
				default:
					err = d.Errf("builtin_presets %q must be on or off", v)
				}
			}
		case "preset":
			var p connectors.PresetConfig
			p, err = parsePreset(d)
			app.Presets = append(app.Presets, p)
		case "grant":
			var g grants.Rule
			g, err = parseGrant(d)
			app.Grants = append(app.Grants, g)
		case "approvers":
			err = appendUnique(d, &app.Approvers, grants.ValidateSource)
		case "approval_ttl":
			err = setDuration(d, seen, &app.ApprovalTTL)
		case "approval_webhook":
			err = setString(d, seen, &app.ApprovalWebhook, approvals.CheckWebhookURL)
		case "self_approve":
			err = setFlag(d, seen, &app.SelfApprove)
		case "tool_search":
			if err = once(d, seen); err == nil {
				app.ToolSearch, err = parseToolSearch(d)
			}
		case "always_list":
			err = appendUnique(d, &app.AlwaysList, grants.ValidatePattern)
		default:
			return nil, d.Errf("unrecognized mcpgate option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "mcpgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseConnector parses one connector block. defined maps the ids seen so
// far to where they were declared, so that a duplicate can point at the
// first one; the registry refuses it too, but with no file or line.
// Syntax:
//
//	connector <id> {
//		url     <url>
//		api     <url>
//		auth    bearer <token>
//		auth    header <name> <value>
//		timeout <duration>
//		title   <text>
//		description <text>
//		disabled
//		tools {
//			...
//		}
//	}
func parseConnector(d *caddyfile.Dispenser, defined map[string]caddyfile.Token) (connectors.Config, error) {
	var c connectors.Config
	if !d.AllArgs(&c.ID) {
		return c, d.ArgErr()
	}
	if err := connectors.ValidateID(c.ID); err != nil {
		return c, d.WrapErr(err)
	}
	if first, ok := defined[c.ID]; ok {
		return c, d.Errf("connector %q is already defined at %s:%d", c.ID, first.File, first.Line)
	}
	start := d.Token()
	defined[c.ID] = start
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "url":
			err = setString(d, seen, &c.URL, checkURL)
		case "api":
			err = setString(d, seen, &c.API, checkAPI)
		case "auth":
			if err = once(d, seen); err == nil {
				c.Auth, err = parseAuth(d)
			}
		case "timeout":
			err = setDuration(d, seen, &c.Timeout)
		case "tools":
			if err = once(d, seen); err == nil {
				c.Tools, err = parseTools(d)
			}
		case "title":
			err = setString(d, seen, &c.Title, nonEmpty("title"))
		case "description":
			err = setString(d, seen, &c.Description, nonEmpty("description"))
		case "disabled":
			err = setFlag(d, seen, &c.Disabled)
		default:
			return c, d.Errf("unrecognized connector subdirective %q", d.Val())
		}
		if err != nil {
			return c, err
		}
	}
	if c.URL == "" && c.API == "" {
		return c, errAt(start, "connector %q: url is required unless api is set (url: an MCP endpoint; api: an HTTP API base)", c.ID)
	}
	return c, nil
}

// authType is the shape of an auth type keyword. An unknown type is quoted
// in the error only when it has this shape: a lone value after "auth" is
// more likely a token written without its type, and a token is a secret.
var authType = regexp.MustCompile(`^[a-z][a-z_]{0,15}$`)

// parseAuth parses a connector's auth line. The token and the header value
// are secrets, usually placeholders such as {env.NAME} or {file./path}: no
// error here names them, so that they never reach a terminal or a log.
// Syntax:
//
//	auth bearer <token>
//	auth header <name> <value>
func parseAuth(d *caddyfile.Dispenser) (*connectors.AuthConfig, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Err("auth needs a type: bearer, header or oauth")
	}
	a := &connectors.AuthConfig{Type: connectors.AuthType(args[0])}
	switch {
	case a.Type == "oauth" && len(args) == 1:
		var err error
		a.OAuth, err = parseOAuth(d)
		return a, err
	case a.Type == "oauth":
		return nil, d.Err("auth oauth takes no values on its line; configure it in its block")
	case a.Type == "bearer" && len(args) == 2:
		a.Token = args[1]
	case a.Type == "bearer":
		return nil, d.Err("auth bearer takes one value: the token")
	case a.Type == "header" && len(args) == 3:
		a.Header, a.Value = args[1], args[2]
	case a.Type == "header":
		return nil, d.Err("auth header takes two values: the header name and its value")
	case len(args) > 1 && authType.MatchString(string(a.Type)):
		return nil, d.Errf("auth type %q must be bearer, header or oauth", a.Type)
	default:
		return nil, d.Err("auth type must be bearer or header followed by the credential, or oauth")
	}
	if err := checkAuth(a); err != nil {
		return nil, d.WrapErr(err)
	}
	return a, nil
}

// parseTools parses a connector's tools block. allow may repeat and
// accumulates; each tool takes at most one operation: a second line could
// only contradict the first, and if read won, a read-only grant would
// allow a tool that writes. Syntax:
//
//	tools {
//		allow     <tool...>
//		operation <tool> read|write
//	}
func parseTools(d *caddyfile.Dispenser) (*connectors.ToolsConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	t := new(connectors.ToolsConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "allow":
			err = appendUnique(d, &t.Allow, nonEmpty("tool name"))
		case "operation":
			err = addOperation(d, t)
		default:
			return nil, d.Errf("unrecognized tools subdirective %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// parseGrant parses one grant block. The list keywords may repeat and
// accumulate. A pattern naming a connector that is not defined is not an
// error here: a runtime connector added later through the admin API may
// take that id, so provisioning only warns about it. Syntax:
//
//	grant {
//		src        <source...>
//		role       user|admin
//		connectors <id-or-glob...>
//		tools      <glob...>
//		resources  <glob...>
//		templates  <glob...>
//		prompts    <glob...>
//		operations read
//		approve    write | <glob...>
//	}
func parseGrant(d *caddyfile.Dispenser) (grants.Rule, error) {
	var g grants.Rule
	start := d.Token()
	if d.NextArg() {
		return g, d.ArgErr()
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "src":
			err = appendUnique(d, &g.Sources, grants.ValidateSource)
		case "role":
			err = setString(d, seen, &g.Role, checkRole)
		case "connectors":
			err = appendUnique(d, &g.Connectors, grants.ValidateConnectorPattern)
		case "tools":
			err = appendUnique(d, &g.Tools, grants.ValidatePattern)
		case "resources":
			err = appendUnique(d, &g.Resources, grants.ValidatePattern)
		case "templates":
			err = appendUnique(d, &g.Templates, grants.ValidatePattern)
		case "prompts":
			err = appendUnique(d, &g.Prompts, grants.ValidatePattern)
		case "operations":
			err = setString(d, seen, &g.Operations, grants.ValidateOperations)
		case "approve":
			err = appendUnique(d, &g.Approve, checkApprove)
		default:
			return g, d.Errf("unrecognized grant subdirective %q", d.Val())
		}
		if err != nil {
			return g, err
		}
	}
	return g, checkGrant(start, g)
}

// parseHandler sets up the mcpgate handler from the directive of the same
// name.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. The
// directive has no arguments: what the gateway serves is configured once,
// in the global mcpgate option, and shared by every site. Its block holds
// only how this site lists tools, which wins over the global setting.
// Syntax:
//
//	mcpgate {
//		tool_search off|on|auto [<threshold>]
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "tool_search":
			if err := once(d, seen); err != nil {
				return err
			}
			s, err := parseToolSearch(d)
			if err != nil {
				return err
			}
			h.ToolSearch = s
		default:
			return d.Errf("unrecognized mcpgate subdirective %q: the mcpgate directive takes no block but tool_search; configure the gateway in the global mcpgate option", d.Val())
		}
	}
	return nil
}

// parseToolSearch parses the arguments of tool_search.
// Syntax:
//
//	tool_search off|on|auto [<threshold>]
func parseToolSearch(d *caddyfile.Dispenser) (*mcpmux.ToolSearch, error) {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return nil, d.ArgErr()
	}
	s := &mcpmux.ToolSearch{Mode: args[0]}
	switch args[0] {
	case mcpmux.SearchOff, mcpmux.SearchOn:
		if len(args) == 2 {
			return nil, d.Errf("tool_search %s takes no threshold; only auto does", args[0])
		}
	case mcpmux.SearchAuto:
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 {
				return nil, d.Errf("tool_search auto %q: the threshold must be a whole number of tools, 1 or more", args[1])
			}
			s.Threshold = n
		}
	default:
		return nil, d.Errf("tool_search %q must be off, on or auto", args[0])
	}
	return s, nil
}

// once refuses a second occurrence of a single-valued keyword in a block.
func once(d *caddyfile.Dispenser, seen map[string]bool) error {
	if seen[d.Val()] {
		return d.Errf("%s is already set", d.Val())
	}
	seen[d.Val()] = true
	return nil
}

// single returns the only argument of a single-valued keyword.
func single(d *caddyfile.Dispenser, seen map[string]bool) (string, error) {
	if err := once(d, seen); err != nil {
		return "", err
	}
	var v string
	if !d.AllArgs(&v) {
		return "", d.ArgErr()
	}
	return v, nil
}

// setString sets *dst to the keyword's argument once check accepts it.
func setString[S ~string](d *caddyfile.Dispenser, seen map[string]bool, dst *S, check func(string) error) error {
	v, err := single(d, seen)
	if err != nil {
		return err
	}
	if err := check(v); err != nil {
		return d.WrapErr(err)
	}
	*dst = S(v)
	return nil
}

// setFlag sets *dst for a keyword that takes no value, such as disabled.
func setFlag(d *caddyfile.Dispenser, seen map[string]bool, dst *bool) error {
	if err := once(d, seen); err != nil {
		return err
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

// setDuration sets *dst to the keyword's argument, a positive duration.
func setDuration[D ~int64](d *caddyfile.Dispenser, seen map[string]bool, dst *D) error {
	kw := d.Val()
	v, err := single(d, seen)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s %q: %v", kw, v, err)
	}
	if dur <= 0 {
		return d.Errf("%s %q must be positive", kw, v)
	}
	*dst = D(dur)
	return nil
}

// setSize sets *dst to the keyword's argument, a positive size such as
// 4MiB or 512KB, read the way Caddy's request_body reads max_size.
func setSize(d *caddyfile.Dispenser, seen map[string]bool, dst *int64) error {
	kw := d.Val()
	v, err := single(d, seen)
	if err != nil {
		return err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return d.Errf("%s %q: %v", kw, v, err)
	}
	if n == 0 || n > math.MaxInt64 {
		return d.Errf("%s %q must be positive and fit in 63 bits", kw, v)
	}
	*dst = int64(n)
	return nil
}

// appendUnique appends the keyword's arguments to *dst, each accepted by
// check, refusing one that is already listed.
func appendUnique(d *caddyfile.Dispenser, dst *[]string, check func(string) error) error {
	kw := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, a := range args {
		if err := check(a); err != nil {
			return d.WrapErr(err)
		}
		if slices.Contains(*dst, a) {
			return d.Errf("%s: %q is listed twice", kw, a)
		}
		*dst = append(*dst, a)
	}
	return nil
}

// addOperation records a tool's operation fact, refusing a second one for
// the same tool.
func addOperation(d *caddyfile.Dispenser, t *connectors.ToolsConfig) error {
	var tool, op string
	if !d.AllArgs(&tool, &op) {
		return d.ArgErr()
	}
	operation, err := connectors.ParseOperation(op)
	if err != nil {
		return d.WrapErr(err)
	}
	if prev, ok := t.Operations[tool]; ok {
		return d.Errf("tool %q already has operation %s", tool, prev)
	}
	if t.Operations == nil {
		t.Operations = make(map[string]connectors.Operation)
	}
	t.Operations[tool] = operation
	return nil
}

// errAt returns an error positioned at tok instead of at the dispenser's
// current token, for a block whose mistake is only known at its end.
func errAt(tok caddyfile.Token, format string, args ...any) error {
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.Errf(format, args...)
}

// hasPlaceholder reports whether v holds a placeholder such as {env.NAME},
// whose value is only known when the config is provisioned. A literal
// that merely has braces counts too: its check then runs at provisioning
// on the resolved value, so it is moved, never skipped.
func hasPlaceholder(v string) bool {
	open := strings.IndexByte(v, '{')
	return open >= 0 && strings.IndexByte(v[open:], '}') > 0
}

// nonEmpty returns a check that refuses an empty value of the named field.
func nonEmpty(field string) func(string) error {
	return func(v string) error {
		if v == "" {
			return fmt.Errorf("%s must not be empty", field)
		}
		return nil
	}
}

// checkPublicURL accepts an absolute http or https URL with a host, and
// perhaps a path, under which the gateway's links are built. A query or a
// fragment would end up in the middle of every link built on it, the
// OAuth redirect URI included, which must match the registered one
// exactly. Credentials are redacted from the error: it may reach a log.
func checkPublicURL(v string) error {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return fmt.Errorf("public_url %q: %v", v, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("public_url %q: scheme must be http or https", v)
	case u.Host == "":
		return fmt.Errorf("public_url %q: has no host", v)
	case u.User != nil:
		return fmt.Errorf("public_url %q: must not have credentials", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("public_url %q: must not have a query or a fragment", v)
	}
	return nil
}

// checkHost accepts a host name, exact or "*.example.com", without a
// scheme or port: what a request's Host may name besides public_url's.
// The DNS rebinding check compares names only (a rebinding attack
// changes what a name resolves to, not the port), so a port here would
// never match and is refused rather than ignored.
func checkHost(v string) error {
	name := strings.TrimPrefix(v, "*.")
	u, err := url.Parse("http://" + name)
	if err != nil || u.Host != name || u.Port() != "" || strings.Contains(name, "*") || name == "" {
		return fmt.Errorf("allowed_hosts: %q must be a host name such as mcp.example.com or *.example.com, without a scheme or port", v)
	}
	return nil
}

// checkSeparator accepts the two tool separators. Both are safe because a
// connector id has no underscore.
func checkSeparator(v string) error {
	if v != "_" && v != "__" {
		return fmt.Errorf("tool_separator %q must be _ or __", v)
	}
	return nil
}

// checkURL checks a connector's URL, unless a placeholder makes it known
// only at provisioning.
func checkURL(v string) error {
	if hasPlaceholder(v) {
		return nil
	}
	_, err := connectors.ParseURL(v)
	return err
}

// checkAPI checks a connector's API base URL, unless a placeholder makes
// it known only at provisioning.
func checkAPI(v string) error {
	if hasPlaceholder(v) {
		return nil
	}
	_, err := connectors.ParseAPIURL(v)
	return err
}

// checkAuth checks the credential's shape with the connectors package,
// which never echoes a secret. A value holding a placeholder is resolved
// at provisioning, so a well-formed stand-in takes its place here; the
// resolved value goes through the same check then.
func checkAuth(a *connectors.AuthConfig) error {
	literal := func(v, standIn string) string {
		if hasPlaceholder(v) {
			return standIn
		}
		return v
	}
	return connectors.Auth{
		Type:  a.Type,
		Token: literal(a.Token, "placeholder"),
		Name:  literal(a.Header, "X-Placeholder"),
		Value: literal(a.Value, "placeholder"),
	}.Validate()
}

// checkApprove accepts an entry of a grant's approve: write, or a tool
// glob.
func checkApprove(v string) error {
	return grants.Rule{Sources: []string{"*"}, Connectors: []string{"*"}, Approve: []string{v}}.Validate()
}

// checkRole accepts the roles the grants package knows.
func checkRole(v string) error {
	_, err := grants.ParseRole(v)
	return err
}

// checkGrant checks a parsed grant as a whole; its errors point at the
// grant's first line. A grant without src matches no one and one without
// connectors or items allows nothing; deny by default would make either
// a silent no-op, so both are mistakes to report.
func checkGrant(start caddyfile.Token, g grants.Rule) error {
	if len(g.Sources) == 0 {
		return errAt(start, "grant has no src")
	}
	if len(g.Connectors)+len(g.Tools)+len(g.Resources)+len(g.Templates)+len(g.Prompts) == 0 {
		return errAt(start, "grant names no connectors and no items")
	}
	return nil
}

// parsePreset parses one preset block. client_id and client_secret are
// the static OAuth client of the runtime connectors that match the
// preset's url; they are checked for presence only, never quoted:
//
//	preset <id> {
//		url           <url>
//		client_id     <id>
//		client_secret <secret>
//		title         <text>
//		description   <text>
//	}
func parsePreset(d *caddyfile.Dispenser) (connectors.PresetConfig, error) {
	var p connectors.PresetConfig
	if !d.AllArgs(&p.ID) {
		return p, d.ArgErr()
	}
	if err := connectors.ValidateID(p.ID); err != nil {
		return p, d.WrapErr(err)
	}
	start := d.Token()
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "url":
			err = setString(d, seen, &p.URL, checkURL)
		case "client_id":
			err = setString(d, seen, &p.ClientID, nonEmpty("client_id"))
		case "client_secret":
			err = setString(d, seen, &p.ClientSecret, nonEmpty("client_secret"))
		case "title":
			err = setString(d, seen, &p.Title, nonEmpty("title"))
		case "description":
			err = setString(d, seen, &p.Description, nonEmpty("description"))
		default:
			return p, d.Errf("unrecognized preset option %q", d.Val())
		}
		if err != nil {
			return p, err
		}
	}
	if p.URL == "" {
		return p, errAt(start, "preset %s: url is required", p.ID)
	}
	return p, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
