package mcpgate

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcpgate",
		Usage: "connectors|grants|audit|presets ... [--address <listen>] [--config <path> [--adapter <name>]] [--json]",
		Short: "Manages mcpgate's connectors, tools and grants on a running Caddy",
		Long: `
Manages mcpgate on a running Caddy through its admin API (/mcpgate/...):
adds runtime connectors and runs their consent, chooses which of their
tools enter the catalog, shows what a caller's grants allow, and reads
the audit log.

The commands call the admin endpoint at ` + caddy.DefaultAdminListen + `, or the one
--address names, or the one of the config that --config (and --adapter)
name. They print for people; --json prints the admin API's answer as it
is. An error from the admin API is printed and exits with status 1.
Secrets are never printed: give one as - to read it from standard input
instead of the command line.

A connector with dynamic client registration and shared consent, then a
read-only selection of its tools:

  caddy mcpgate connectors add --name notion --mcp-server-url https://mcp.notion.com/mcp --dcr --consent shared
  caddy mcpgate connectors tools notion --discover
  caddy mcpgate connectors tools notion --register notion-search=read,notion-fetch=read
  caddy mcpgate grants check --user alice@example.com --groups ai-users
`,
		CobraFunc: buildCLI,
	})
}

// cliCommand is one leaf of the `caddy mcpgate` tree.
type cliCommand struct {
	parent string // "connectors", "grants", or "" for mcpgate itself
	use    string
	short  string
	args   cobra.PositionalArgs
	flags  func(*cobra.Command)
	run    func(*cli, []string) error
}

// cliCommands are the leaves of `caddy mcpgate`, one per admin API call.
var cliCommands = []cliCommand{
	{"connectors", "add [<id>]", "Adds a runtime connector and prints where to consent", cobra.MaximumNArgs(1), addFlags, (*cli).add},
	{"connectors", "list", "Lists the connectors", cobra.NoArgs, nil, (*cli).list},
	{"connectors", "show <id>", "Shows a connector", cobra.ExactArgs(1), nil, (*cli).show},
	{"connectors", "connect <id>", "Starts a consent and prints its authorization URL", cobra.ExactArgs(1), userFlag, (*cli).connect},
	{"connectors", "disconnect <id>", "Purges a credential and revokes it at the provider", cobra.ExactArgs(1), userFlag, (*cli).disconnect},
	{"connectors", "reconnect <id>", "Disconnects, then starts a new consent", cobra.ExactArgs(1), userFlag, (*cli).reconnect},
	{"connectors", "remove <id>", "Removes a runtime connector and revokes its tokens", cobra.ExactArgs(1), nil, (*cli).remove},
	{"connectors", "tools <id> [<name>...]", "Shows, discovers, registers or approves a connector's tools", cobra.MinimumNArgs(1), toolsFlags, (*cli).tools},
	{"connectors", "diagnose <id>", "Runs the OAuth connect path step by step; exits 1 if a step fails", cobra.ExactArgs(1), nil, (*cli).diagnose},
	{"grants", "check", "Shows what a caller's grants allow", cobra.NoArgs, grantsFlags, (*cli).grantsCheck},
	{"", "audit", "Shows recent audit events, newest first", cobra.NoArgs, auditFlags, (*cli).audit},
	{"", "presets", "Lists the preset catalog", cobra.NoArgs, nil, (*cli).presets},
}

// buildCLI fills in the `caddy mcpgate` command that Caddy made.
func buildCLI(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.String("address", "", "Address of the admin API listener (if --config is not used)")
	pf.StringP("config", "c", "", "Configuration file whose admin address to use (if --address is not used)")
	pf.StringP("adapter", "a", "", "Name of config adapter to apply (if --config is used)")
	pf.Bool("json", false, "Print the admin API's JSON answer")
	parents := map[string]*cobra.Command{
		"":           root,
		"connectors": {Use: "connectors", Short: "Adds, shows, connects and removes connectors, and selects their tools"},
		"grants":     {Use: "grants", Short: "Checks what grants allow"},
	}
	root.AddCommand(parents["connectors"], parents["grants"])
	for _, cc := range cliCommands {
		parents[cc.parent].AddCommand(cc.command())
	}
}

// command makes the cobra command of cc.
func (cc cliCommand) command() *cobra.Command {
	cmd := &cobra.Command{Use: cc.use, Short: cc.short, Args: cc.args}
	if cc.flags != nil {
		cc.flags(cmd)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Usage helps with bad arguments, which cobra catches before
		// this; it only buries an error from the admin API.
		cmd.SilenceUsage = true
		c, err := newCLI(cmd)
		if err != nil {
			return err
		}
		return cc.run(c, args)
	}
	return cmd
}

// userFlag, addFlags, toolsFlags, grantsFlags and auditFlags define the
// flags of their commands.
func userFlag(cmd *cobra.Command) {
	cmd.Flags().String("user", "", "Whose connection, for a connector with per-user consent")
}

func addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("name", "", "The connector's id (or give it as the argument)")
	f.String("mcp-server-url", "", "The upstream's streamable HTTP MCP endpoint")
	f.String("api", "", "The base URL of the upstream's HTTP API, served at /connectors/<id>/api/")
	f.String("title", "", "A title for people")
	f.String("description", "", "A description for people")
	f.Bool("oauth", false, "Authenticate with OAuth, everything discovered from the server")
	f.Bool("dcr", false, "Register the OAuth client dynamically (RFC 7591)")
	f.String("client-id", "", "A pre-registered OAuth client id")
	f.String("client-secret", "", "The pre-registered client's secret; - reads it from standard input")
	f.String("token-auth-method", "", "client_secret_basic, client_secret_post or none")
	f.String("audience", "", "The audience parameter, for servers that want one")
	f.String("resource", "", "The RFC 8707 resource indicator (default: the URL)")
	f.StringArray("scopes", nil, "Scopes to request, space or comma separated (default: what the server advertises)")
	f.String("consent", "", "shared (an admin consents once) or per_user (each user consents; default)")
	f.Bool("insecure-loopback", false, "Let discovered URLs use http:// on loopback: tests and development only")
	f.String("bearer", "", "A static bearer token instead of OAuth; - reads it from standard input")
	f.String("header", "", "A static credential header <name>=<value> instead of OAuth; a value of - is read from standard input")
	f.Bool("no-match-preset", false, "Do not take a matching preset's client, title and description")
}

// oauthFlags are the flags of `connectors add` that make a connector use
// OAuth.
var oauthFlags = []string{"oauth", "dcr", "client-id", "client-secret", "token-auth-method", "audience", "resource", "scopes", "consent", "insecure-loopback"}

func toolsFlags(cmd *cobra.Command) {
	userFlag(cmd)
	f := cmd.Flags()
	f.Bool("discover", false, "Also list the upstream's tools now")
	f.StringSlice("register", nil, "Register this selection: <name or glob>[=read|write],... (without one, the annotations decide)")
	f.Bool("approve", false, "Approve the drifted tools named after the id, or all of them")
	cmd.MarkFlagsMutuallyExclusive("discover", "register", "approve")
}

func grantsFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("user", "", "The caller's identity (required)")
	f.StringSlice("groups", nil, "The caller's groups, comma separated")
	f.StringArray("tool", nil, "Also decide on this tool, as <connector>/<name>; repeatable")
	_ = cmd.MarkFlagRequired("user")
}

func auditFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("since", "", "Only events since then: a duration ago (1h, 30m) or an RFC 3339 time")
	f.String("user", "", "Only events of this user")
	f.String("connector", "", "Only events of this connector")
	f.String("kind", "", "Only events of this kind: consent_start, consent_finish, refresh_failure, disconnect, revocation, admin_change or tool_call")
	f.Int("limit", 0, "At most this many events (default: the admin API's)")
}

// cli is one run of a `caddy mcpgate` command: the admin endpoint it
// calls, its flags, and where it reads and prints.
type cli struct {
	addr  string
	json  bool
	flags *pflag.FlagSet
	in    io.Reader
	out   io.Writer
}

// newCLI reads the flags every command shares.
func newCLI(cmd *cobra.Command) (*cli, error) {
	f := cmd.Flags()
	address, _ := f.GetString("address")
	config, _ := f.GetString("config")
	adapter, _ := f.GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return nil, fmt.Errorf("couldn't determine admin API address: %v", err)
	}
	asJSON, _ := f.GetBool("json")
	return &cli{addr: addr, json: asJSON, flags: f, in: cmd.InOrStdin(), out: cmd.OutOrStdout()}, nil
}

// str and boolean read a flag that the command defines.
func (c *cli) str(name string) string   { v, _ := c.flags.GetString(name); return v }
func (c *cli) boolean(name string) bool { v, _ := c.flags.GetBool(name); return v }

// call sends one request to the admin API. With --json it prints the
// answer as it came; otherwise it decodes the answer and hands it to
// human, whose columns (cells ending in tabs) are aligned.
func call[T any](c *cli, method, uri string, body any, human func(w io.Writer, v T)) error {
	raw, err := c.request(method, uri, body)
	if err != nil {
		return err
	}
	if c.json {
		_, err := c.out.Write(raw)
		return err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the admin API answered %s %s with something other than the JSON expected: %v", method, uri, err)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	human(tw, v)
	return tw.Flush()
}

// maxAdminAnswer caps what the CLI reads of an answer.
const maxAdminAnswer = 16 << 20

// request sends body as JSON and returns the answer of a 2xx.
func (c *cli) request(method, uri string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, nil, rd)
	if err != nil {
		return nil, c.adminError(err)
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
}

// answerError matches what AdminAPIRequest makes of an answer of 400 or
// more: its status and body, which holds the admin API's {"error": …}.
var answerError = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d+): (.*)$`)

// adminError turns an error of AdminAPIRequest into the admin API's own
// message, or says that the endpoint could not be reached.
func (c *cli) adminError(err error) error {
	m := answerError.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("reaching the admin API at %s: %v (is Caddy running? say where with --address or --config)", c.addr, err)
	}
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &answer) != nil || answer.Error == "" {
		answer.Error = strings.TrimSpace(m[2])
	}
	return fmt.Errorf("%s (HTTP %s)", answer.Error, m[1])
}

// connectorURI is the admin URI of connector id, plus a sub-path and
// query.
func connectorURI(id, sub string, q url.Values) string {
	u := "/mcpgate/connectors/" + url.PathEscape(id) + sub
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// userQuery is ?user= from --user, if given.
func (c *cli) userQuery() url.Values {
	q := url.Values{}
	if user := c.str("user"); user != "" {
		q.Set("user", user)
	}
	return q
}

// secret returns a secret flag's value, read from standard input when
// it is "-" so that it stays out of the shell history and process list.
func (c *cli) secret(v string) (string, error) {
	if v != "-" {
		return v, nil
	}
	line, err := bufio.NewReader(c.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading a secret from standard input: %v", err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", errors.New("standard input held no secret")
	}
	return line, nil
}

// add runs `connectors add`.
func (c *cli) add(args []string) error {
	req, err := c.addRequest(args)
	if err != nil {
		return err
	}
	return call(c, http.MethodPost, "/mcpgate/connectors", req, func(w io.Writer, v addedConnector) {
		fmt.Fprintf(w, "Added connector %s: %s.\n", v.ID, authSummary(v.adminConnector))
		switch {
		case v.ConsentError != "":
			fmt.Fprintf(w, "Consent could not start: %s.\n", strings.TrimSuffix(v.ConsentError, "; run diagnose"))
			fmt.Fprintf(w, "See why with: caddy mcpgate connectors diagnose %s\n", v.ID)
		case v.AuthURL != "":
			fmt.Fprintf(w, "Consent is shared: open this URL as an admin, within 10 minutes:\n  %s\n", v.AuthURL)
		case v.ConnectURL != "":
			fmt.Fprintf(w, "Each user connects at:\n  %s\n", v.ConnectURL)
		}
	})
}

// addRequest builds the body of `connectors add` from its flags.
func (c *cli) addRequest(args []string) (addConnectorRequest, error) {
	id := c.str("name")
	if len(args) == 1 {
		if id != "" && id != args[0] {
			return addConnectorRequest{}, fmt.Errorf("the id is %q or %q? give it once", args[0], id)
		}
		id = args[0]
	}
	req := addConnectorRequest{
		ConnectorConfig: ConnectorConfig{ID: id, URL: c.str("mcp-server-url"), API: c.str("api")},
		Title:           c.str("title"),
		Description:     c.str("description"),
	}
	if id == "" || (req.URL == "" && req.API == "") {
		return req, errors.New("say the connector's id with --name, and its MCP endpoint with --mcp-server-url or its HTTP API with --api")
	}
	auth, err := c.auth()
	if err != nil {
		return req, err
	}
	req.Auth = auth
	if c.boolean("no-match-preset") {
		req.MatchPreset = new(false)
	}
	return req, nil
}

// auth builds the connector's credential from the flags: a bearer token,
// a header, OAuth, or none.
func (c *cli) auth() (*AuthConfig, error) {
	bearer, header := c.str("bearer"), c.str("header")
	oauth := slices.ContainsFunc(oauthFlags, c.flags.Changed)
	kinds := 0
	for _, set := range []bool{bearer != "", header != "", oauth} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, errors.New("choose one kind of credential: --bearer, --header, or the OAuth flags")
	}
	switch {
	case bearer != "":
		token, err := c.secret(bearer)
		return &AuthConfig{Type: string(connectors.AuthBearer), Token: token}, err
	case header != "":
		name, value, ok := strings.Cut(header, "=")
		if !ok || name == "" {
			return nil, errors.New("--header: say <name>=<value>") // the flag may hold the secret
		}
		value, err := c.secret(value)
		return &AuthConfig{Type: string(connectors.AuthHeader), Header: name, Value: value}, err
	case oauth:
		o, err := c.oauthConfig()
		return &AuthConfig{Type: string(connectors.AuthOAuth), OAuth: o}, err
	}
	return nil, nil
}

// oauthConfig builds the connector's OAuth client from the flags.
func (c *cli) oauthConfig() (*OAuthConfig, error) {
	o := &OAuthConfig{
		ClientID:         c.str("client-id"),
		TokenAuthMethod:  c.str("token-auth-method"),
		Audience:         c.str("audience"),
		Resource:         c.str("resource"),
		Consent:          c.str("consent"),
		InsecureLoopback: c.boolean("insecure-loopback"),
	}
	if c.boolean("dcr") {
		o.Registration = "dcr"
	}
	if scopes, _ := c.flags.GetStringArray("scopes"); len(scopes) > 0 {
		o.Scopes = splitList(strings.Join(scopes, ","))
	}
	var err error
	o.ClientSecret, err = c.secret(c.str("client-secret"))
	return o, err
}

// authSummary says in a few words how a connector authenticates.
func authSummary(v adminConnector) string {
	s := v.Auth
	if v.Auth == string(connectors.AuthOAuth) {
		s += fmt.Sprintf(" with %s registration, %s consent", v.Registration, cmp.Or(v.Consent, "per_user"))
	}
	if v.Preset != "" {
		s += ", preset " + v.Preset
	}
	return s
}

// list runs `connectors list`.
func (c *cli) list([]string) error {
	return call(c, http.MethodGet, "/mcpgate/connectors", nil, func(w io.Writer, v struct {
		Connectors []adminConnector `json:"connectors"`
	}) {
		if len(v.Connectors) == 0 {
			fmt.Fprintln(w, "No connectors.")
			return
		}
		fmt.Fprintln(w, "ID\tSOURCE\tAUTH\tCONSENT\tSTATE\tTOOLS\tURL")
		for _, cv := range v.Connectors {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cv.ID, cv.Source, cv.Auth, cmp.Or(cv.Consent, "-"),
				connectionState(cv), toolsState(cv.Tools), cmp.Or(cv.URL, "-"))
		}
	})
}

// connectionState is a connector's shared connection state in a word.
func connectionState(v adminConnector) string {
	switch {
	case v.Connection != nil:
		return cmp.Or(string(v.Connection.State), "not connected")
	case v.Consent == string(oauthflow.PerUser):
		return "per user"
	}
	return "-"
}

// toolsState says what a connector's tool selection holds.
func toolsState(t *toolsSummary) string {
	if t == nil {
		return "all"
	}
	s := fmt.Sprintf("%d registered", t.Registered)
	if len(t.Drifted) > 0 {
		s += fmt.Sprintf(", %d drifted", len(t.Drifted))
	}
	return s
}

// show runs `connectors show`.
func (c *cli) show(args []string) error {
	return call(c, http.MethodGet, connectorURI(args[0], "", nil), nil, func(w io.Writer, v adminConnector) {
		state, reason, drifted := connectionState(v), "", ""
		if state == "-" {
			state = "" // no OAuth, nothing to connect
		}
		if conn := v.Connection; conn != nil {
			if !conn.Since.IsZero() {
				state += " since " + conn.Since.Format(time.RFC3339)
			}
			reason = conn.Reason
		}
		if v.Tools != nil {
			drifted = strings.Join(v.Tools.Drifted, ", ")
		}
		fields := [][2]string{
			{"id", v.ID}, {"source", v.Source}, {"url", v.URL}, {"auth", authSummary(v)},
			{"title", v.Title}, {"description", v.Description},
			{"connection", state}, {"reason", reason}, {"tools", toolsState(v.Tools)}, {"drifted", drifted},
		}
		for _, f := range fields {
			if f[1] != "" {
				fmt.Fprintf(w, "%s:\t%s\n", f[0], f[1])
			}
		}
	})
}

// connect runs `connectors connect`.
func (c *cli) connect(args []string) error {
	return call(c, http.MethodPost, connectorURI(args[0], "/connect", c.userQuery()), nil, func(w io.Writer, v struct {
		AuthURL string `json:"auth_url"`
	}) {
		c.printAuthURL(w, args[0], v.AuthURL)
	})
}

// printAuthURL tells who opens a consent's authorization URL.
func (c *cli) printAuthURL(w io.Writer, id, authURL string) {
	who := "an admin"
	if user := c.str("user"); user != "" {
		who = user
	}
	fmt.Fprintf(w, "To connect %s, %s opens this URL within 10 minutes:\n  %s\n", id, who, authURL)
}

// disconnect runs `connectors disconnect`.
func (c *cli) disconnect(args []string) error {
	return call(c, http.MethodPost, connectorURI(args[0], "/disconnect", c.userQuery()), nil, func(w io.Writer, v revocationView) {
		fmt.Fprintf(w, "Disconnected %s.\n", args[0])
		printRevocation(w, v)
	})
}

// printRevocation says what became of a token at its provider.
func printRevocation(w io.Writer, r revocationView) {
	switch {
	case r.Revoked:
		fmt.Fprintln(w, "The provider revoked the token.")
	case r.Attempted:
		fmt.Fprintf(w, "Revoking the token failed: %s.\n", cmp.Or(r.Detail, "no detail"))
	default:
		fmt.Fprintf(w, "Nothing was revoked: %s.\n", cmp.Or(r.Detail, "there was no token"))
	}
}

// reconnect runs `connectors reconnect`.
func (c *cli) reconnect(args []string) error {
	return call(c, http.MethodPost, connectorURI(args[0], "/reconnect", c.userQuery()), nil, func(w io.Writer, v struct {
		AuthURL    string         `json:"auth_url"`
		Revocation revocationView `json:"revocation"`
	}) {
		fmt.Fprintf(w, "Disconnected %s.\n", args[0])
		printRevocation(w, v.Revocation)
		c.printAuthURL(w, args[0], v.AuthURL)
	})
}

// remove runs `connectors remove`.
func (c *cli) remove(args []string) error {
	return call(c, http.MethodDelete, connectorURI(args[0], "", nil), nil, func(w io.Writer, v struct {
		Removed     string           `json:"removed"`
		Revocations []revocationView `json:"revocations"`
	}) {
		fmt.Fprintf(w, "Removed connector %s.\n", v.Removed)
		for _, r := range v.Revocations {
			printRevocation(w, r)
		}
	})
}

// tools runs `connectors tools`: it shows the selection, or registers
// one, or approves drifted tools.
func (c *cli) tools(args []string) error {
	id, names := args[0], args[1:]
	switch {
	case c.boolean("approve"):
		return c.approveTools(id, names)
	case len(names) > 0:
		return fmt.Errorf("unexpected arguments %q: only --approve takes tool names", names)
	case c.flags.Changed("register"):
		return c.registerTools(id)
	}
	q := c.userQuery()
	if c.boolean("discover") {
		q.Set("discover", "1")
	}
	return call(c, http.MethodGet, connectorURI(id, "/tools", q), nil, func(w io.Writer, v toolsAnswer) {
		printSelection(w, v)
		if v.Discovered != nil {
			fmt.Fprintf(w, "\nThe upstream's tools now:\n")
			printDiscovered(w, v.Discovered)
		}
	})
}

// registerTools runs `connectors tools --register`.
func (c *cli) registerTools(id string) error {
	entries, _ := c.flags.GetStringSlice("register")
	req, err := registration(entries)
	if err != nil {
		return err
	}
	return call(c, http.MethodPut, connectorURI(id, "/tools", c.userQuery()), req, func(w io.Writer, v toolsAnswer) {
		fmt.Fprintf(w, "Registered %d tools of %s: only these enter the catalog.\n", len(v.Selection), id)
		printSelection(w, v)
	})
}

// approveTools runs `connectors tools --approve`: names, or else every
// drifted tool.
func (c *cli) approveTools(id string, names []string) error {
	return call(c, http.MethodPost, connectorURI(id, "/tools/approve", nil), approveRequest{Tools: names}, func(w io.Writer, v toolsAnswer) {
		if len(v.Approved) == 0 {
			fmt.Fprintf(w, "No tool of %s had drifted.\n", id)
		} else {
			fmt.Fprintf(w, "Approved %s of %s: back in the catalog.\n", strings.Join(v.Approved, ", "), id)
		}
		printSelection(w, v)
	})
}

// registration parses --register's <name>[=<operation>] entries.
func registration(entries []string) (registerRequest, error) {
	req := registerRequest{Tools: []registerEntry{}}
	for _, e := range entries {
		name, op, _ := strings.Cut(e, "=")
		if name == "" {
			return req, fmt.Errorf("--register %q: say <name>[=read|write]", e)
		}
		req.Tools = append(req.Tools, registerEntry{Name: name, Operation: connectors.Operation(op)})
	}
	return req, nil
}

// printSelection prints a connector's selection with its drift.
func printSelection(w io.Writer, v toolsAnswer) {
	if v.Selection == nil {
		fmt.Fprintf(w, "%s has no tool selection: every tool the config allows enters the catalog.\n", v.Connector)
		return
	}
	fmt.Fprintln(w, "TOOL\tOPERATION\tPIN\tDRIFT")
	for _, t := range v.Selection {
		drift := "-"
		if len(t.Drift) > 0 {
			drift = "changed " + strings.Join(slices.Sorted(maps.Keys(t.Drift)), ", ") + ": approve to restore"
		}
		fmt.Fprintf(w, "%s\t%s\t%.12s\t%s\n", t.Name, t.Operation, t.Pin, drift)
	}
}

// printDiscovered prints the upstream's tools as discovered.
func printDiscovered(w io.Writer, tools []discoveredTool) {
	fmt.Fprintln(w, "TOOL\tOPERATION\tREGISTERED\tDESCRIPTION")
	for _, t := range tools {
		reg := yesNo(t.Registered)
		if t.Drifted {
			reg += ", drifted"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Operation, reg, oneLine(t.Description, 60))
	}
}

// diagnose runs `connectors diagnose`. A failed step fails the command,
// so that scripts can check a connector.
func (c *cli) diagnose(args []string) error {
	var failed string
	err := call(c, http.MethodGet, connectorURI(args[0], "/diagnose", nil), nil, func(w io.Writer, v struct {
		OK    bool             `json:"ok"`
		Steps []oauthflow.Step `json:"steps"`
	}) {
		fmt.Fprintln(w, "STEP\tRESULT\tDETAIL")
		for _, s := range v.Steps {
			fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, okFailed(s.OK), s.Detail)
			if !s.OK && failed == "" {
				failed = s.Name
			}
		}
		for _, s := range v.Steps {
			if s.Fix != "" {
				fmt.Fprintf(w, "Fix for %s: %s\n", s.Name, s.Fix)
			}
		}
		if v.OK {
			fmt.Fprintf(w, "%s can connect.\n", args[0])
		} else if failed == "" {
			failed = "a step that did not run"
		}
	})
	if err == nil && failed != "" {
		err = fmt.Errorf("%s failed its diagnosis at %s", args[0], failed)
	}
	return err
}

// grantsCheck runs `grants check`.
func (c *cli) grantsCheck([]string) error {
	q := url.Values{"user": {c.str("user")}}
	if groups, _ := c.flags.GetStringSlice("groups"); len(groups) > 0 {
		q.Set("groups", strings.Join(groups, ","))
	}
	q["tool"], _ = c.flags.GetStringArray("tool")
	return call(c, http.MethodGet, "/mcpgate/grants?"+q.Encode(), nil, func(w io.Writer, v struct {
		User       string           `json:"user"`
		Groups     []string         `json:"groups"`
		Admin      bool             `json:"admin"`
		Connectors []grantConnector `json:"connectors"`
	}) {
		who, role := v.User, "a user"
		if len(v.Groups) > 0 {
			who += " (groups " + strings.Join(v.Groups, ", ") + ")"
		}
		if v.Admin {
			role = "an admin"
		}
		fmt.Fprintf(w, "%s is %s.\n", who, role)
		fmt.Fprintln(w, "CONNECTOR\tVISIBLE\tACCESS")
		for _, gc := range v.Connectors {
			fmt.Fprintf(w, "%s\t%s\t%s\n", gc.ID, yesNo(gc.Visible), yesNo(gc.Access))
		}
		printDecisions(w, v.Connectors)
	})
}

// printDecisions prints the decision on each tool named.
func printDecisions(w io.Writer, conns []grantConnector) {
	header := false
	for _, gc := range conns {
		for _, d := range gc.Tools {
			if !header {
				fmt.Fprintln(w, "\nTOOL\tOPERATION\tDECISION\tBY")
				header = true
			}
			decision, by := "deny", "no grant"
			if d.Allowed {
				decision, by = "allow", fmt.Sprintf("grant %d", d.Rule)
				if d.Grant != nil {
					by += " (src " + strings.Join(d.Grant.Sources, " ") + ")"
				}
			}
			fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\n", gc.ID, d.Tool, d.Operation, decision, by)
		}
	}
}

// audit runs `audit`.
func (c *cli) audit([]string) error {
	q := url.Values{}
	for _, name := range []string{"since", "user", "connector", "kind"} {
		if v := c.str(name); v != "" {
			q.Set(name, v)
		}
	}
	if c.flags.Changed("limit") {
		limit, _ := c.flags.GetInt("limit")
		q.Set("limit", fmt.Sprint(limit))
	}
	uri := "/mcpgate/audit"
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	return call(c, http.MethodGet, uri, nil, func(w io.Writer, v struct {
		Events []audit.Event `json:"events"`
	}) {
		if len(v.Events) == 0 {
			fmt.Fprintln(w, "No audit events.")
			return
		}
		fmt.Fprintln(w, "TIME\tKIND\tUSER\tCONNECTOR\tTOOL\tDECISION\tOUTCOME\tDURATION\tDETAIL")
		for _, e := range v.Events {
			took := "-"
			if e.Duration > 0 {
				took = e.Duration.Round(time.Millisecond).String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.RFC3339), e.Kind,
				cmp.Or(e.User, "-"), cmp.Or(e.Connector, "-"), cmp.Or(e.Tool, "-"), cmp.Or(e.Decision, "-"),
				cmp.Or(e.Outcome, "-"), took, oneLine(e.Detail, 80))
		}
	})
}

// presets runs `presets`.
func (c *cli) presets([]string) error {
	return call(c, http.MethodGet, "/mcpgate/presets", nil, func(w io.Writer, v struct {
		Presets []presetView `json:"presets"`
	}) {
		fmt.Fprintln(w, "ID\tSOURCE\tCLIENT\tURL\tTITLE")
		for _, p := range v.Presets {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Source, yesNo(p.HasClient), p.URL, cmp.Or(p.Title, "-"))
		}
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func okFailed(b bool) string {
	if b {
		return "ok"
	}
	return "failed"
}

// oneLine shortens s to one line of at most n runes, for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return cmp.Or(s, "-")
}
