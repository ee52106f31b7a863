// Package cli is the `caddy mcpgate …` command: it manages mcpgate on a
// running Caddy through the admin API's /mcpgate/ routes and prints the
// answers for people. It knows the admin API only by its JSON, so that it
// depends on Caddy's command package and on nothing of mcpgate's own.
package cli

import (
	"fmt"
	"io"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mcpgate",
		Usage: "connectors|grants|approvals|tools|audit|presets ... [--address <listen>] [--config <path> [--adapter <name>]] [--json]",
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

Several instances that share a database (the global option
storage postgres { dsn {env.MCPGATE_PG_DSN} }, with one seal_key for all)
share what these commands change: a connector added, removed or given a
tool selection through any instance's admin API reaches the others
within a couple of seconds. Address any one of them.

A connector with dynamic client registration and shared consent, then a
read-only selection of its tools:

  caddy mcpgate connectors add --name notion --mcp-server-url https://mcp.notion.com/mcp --dcr --consent shared
  caddy mcpgate connectors tools notion --discover
  caddy mcpgate connectors tools notion --register notion-search=read,notion-fetch=read
  caddy mcpgate grants check --user alice@example.com --groups ai-users

A grant made at run time, with the reason the audit log keeps, and its
removal:

  caddy mcpgate grants add --users bob@example.com --tools 'notion/notion-*' --operations read --reason "covering support this week"
  caddy mcpgate grants remove g-kq3zw5m2rxa7e
`,
		CobraFunc: buildCLI,
	})
}

// cliCommand is one leaf of the `caddy mcpgate` tree.
type cliCommand struct {
	parent string // "connectors", "grants", "approvals", "tools", or "" for mcpgate itself
	use    string
	short  string
	args   cobra.PositionalArgs
	flags  func(*cobra.Command)
	run    func(*cli, []string) error
}

// cliCommands are the leaves of `caddy mcpgate`, one per admin API call.
var cliCommands = []cliCommand{
	{"connectors", "add [<id>]", "Adds a runtime connector and prints where to consent", cobra.MaximumNArgs(1), addFlags, (*cli).add},
	{"connectors", "list", "Lists the connectors, or those of one status group", cobra.NoArgs, listFlags, (*cli).list},
	{"connectors", "show <id>", "Shows a connector and its details; --user, whose connection", cobra.ExactArgs(1), userFlag, (*cli).show},
	{"connectors", "connect <id>", "Starts a consent and prints its authorization URL", cobra.ExactArgs(1), userFlag, (*cli).connect},
	{"connectors", "disconnect <id>", "Purges a credential and revokes it at the provider", cobra.ExactArgs(1), userFlag, (*cli).disconnect},
	{"connectors", "reconnect <id>", "Disconnects, then starts a new consent", cobra.ExactArgs(1), userFlag, (*cli).reconnect},
	{"connectors", "update <id>", "Changes a runtime connector", cobra.MaximumNArgs(1), connectorFlags, (*cli).update},
	{"connectors", "enable <id>", "Enables a disabled connector", cobra.MaximumNArgs(1), nil, (*cli).enable},
	{"connectors", "disable <id>", "Disables a connector, keeping its tokens", cobra.MaximumNArgs(1), nil, (*cli).disable},
	{"connectors", "remove <id>", "Removes a runtime connector and revokes its tokens", cobra.ExactArgs(1), nil, (*cli).remove},
	{"connectors", "tools <id> [<name>...]", "Shows, discovers, registers or approves a connector's tools", cobra.MinimumNArgs(1), toolsFlags, (*cli).tools},
	{"connectors", "diagnose <id>", "Runs the OAuth connect path step by step; exits 1 if a step fails", cobra.ExactArgs(1), nil, (*cli).diagnose},
	{"grants", "check", "Shows what a caller's grants allow", cobra.NoArgs, grantsFlags, (*cli).grantsCheck},
	{"grants", "list", "Lists the grants, the config's and the runtime ones", cobra.NoArgs, nil, (*cli).grantsList},
	{"grants", "add", "Adds a runtime grant, with a reason", cobra.NoArgs, grantsAddFlags, (*cli).grantsAdd},
	{"grants", "remove <id>", "Removes a runtime grant", cobra.ExactArgs(1), nil, (*cli).grantsRemove},
	{"approvals", "list", "Lists the calls waiting for approval, and the recent ones", cobra.NoArgs, approvalsListFlags, (*cli).approvalsList},
	{"approvals", "approve <id>", "Approves a call, as admin: its retry goes through once", cobra.ExactArgs(1), nil, (*cli).approvalsApprove},
	{"approvals", "deny <id>", "Denies a call, as admin", cobra.ExactArgs(1), nil, (*cli).approvalsDeny},
	{"tools", "search <query>...", "Shows what a caller's tool search finds, by its grants", cobra.MinimumNArgs(1), searchFlags, (*cli).toolsSearch},
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
		"grants":     {Use: "grants", Short: "Lists, adds and removes runtime grants, and checks what grants allow"},
		"approvals":  {Use: "approvals", Short: "Lists the calls waiting for approval, and approves or denies them"},
		"tools":      {Use: "tools", Short: "Searches the tools a caller may call, as its agent's search would"},
	}
	root.AddCommand(parents["connectors"], parents["grants"], parents["approvals"], parents["tools"])
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
	if cc.takesID() {
		nameFlag(cmd, cc)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Usage helps with bad arguments, which cobra catches before
		// this; it only buries an error from the admin API.
		cmd.SilenceUsage = true
		c, err := newCLI(cmd)
		if err != nil {
			return err
		}
		if cc.takesID() {
			args, _ = withName(cmd, args, cc.moreArgs())
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
	connectorFlags(cmd)
	f.Bool("no-match-preset", false, "Do not take a matching preset's client, title and description")
}

func toolsFlags(cmd *cobra.Command) {
	userFlag(cmd)
	f := cmd.Flags()
	f.Bool("discover", false, "Also list the upstream's tools now")
	f.StringSlice("register", nil, "Register this selection: <name or glob>[=read|write],... (without one, the annotations decide)")
	f.StringSlice("register-prompts", nil, "With --register, also select and pin these prompts: <name or glob>,...")
	f.Bool("approve", false, "Approve the drifted tools named after the id (prompt:<name> for a prompt), or all of them")
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

// call sends one request to the admin API and prints its answer: as it
// came with --json, otherwise through human.
func call[T any](c *cli, method, uri string, body any, human func(w io.Writer, v T)) error {
	raw, err := c.request(method, uri, body)
	if err != nil {
		return err
	}
	return output(c.out, c.json, raw, method+" "+uri, human)
}
