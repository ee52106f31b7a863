package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spf13/cobra"

	// The CLI manages a real Caddy with the mcpgate module, which the
	// root package registers; a test may import it, the CLI may not.
	_ "github.com/mcpgate/caddy-mcpgate"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/caddyenv"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestMain gives this package's Caddy data and config directories of its
// own, apart from the root package's tests that may run at the same time.
func TestMain(m *testing.M) { os.Exit(caddyenv.Run(m)) }

// The CLI test's Caddy, on ports of its own so that it runs beside the
// root package's integration tests.
const (
	cliAdmin = "localhost:2994"
	cliSite  = "http://127.0.0.1:9084"
)

// cliStack is a real Caddy with mcpgate for the CLI to manage: a static
// connector "plain" (bearer), a shared-consent OAuth connector "team"
// and a per-user one "notes", each upstream behind its own real
// authorization server, and "extra", an upstream with its authorization
// server that the test adds at run time.
type cliStack struct {
	plain, team, notes, extra *testupstream.Server
	teamAS, notesAS, extraAS  *testas.AS
	config                    string
}

func startCLIStack(t *testing.T) *cliStack {
	t.Helper()
	s := &cliStack{
		plain: testupstream.StartT(t, testupstream.Options{Name: "plain", BearerToken: "cli-upstream-token"}),
		team:  testupstream.StartT(t, testupstream.Options{Name: "team"}),
		notes: testupstream.StartT(t, testupstream.Options{Name: "notes"}),
		extra: testupstream.StartT(t, testupstream.Options{Name: "extra"}),
	}
	accounts := []string{"alice", "bob"}
	s.teamAS = testas.Start(t, testas.Options{Resource: s.team.URL, Accounts: accounts})
	s.notesAS = testas.Start(t, testas.Options{Resource: s.notes.URL, Accounts: accounts})
	s.extraAS = testas.Start(t, testas.Options{Resource: s.extra.URL, Accounts: accounts})
	s.team.SetGuard(s.teamAS.Protect)
	s.notes.SetGuard(s.notesAS.Protect)
	s.extra.SetGuard(s.extraAS.Protect)

	// Unload the config, closing the store, before its directory goes
	// (cleanups run last first).
	storeDir := filepath.Join(t.TempDir(), "db")
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"`+cliAdmin+`"}}`), true) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s.config = fmt.Sprintf(`{
	admin %[1]s
	http_port 9084
	https_port 9446
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
		public_url %[2]s
		storage badger %[3]s
		seal_key %[4]s
		list_cache_ttl 100ms
		connector plain {
			url %[5]s
			auth bearer cli-upstream-token
		}
		connector team {
			url %[6]s
			auth oauth {
				consent shared
				insecure_loopback
			}
		}
		connector notes {
			url %[7]s
			auth oauth {
				insecure_loopback
			}
		}
		grant {
			src user:alice
			connectors plain team notes extra
		}
		grant {
			src user:alice
			role admin
			connectors team
		}
		grant {
			src group:readers
			tools extra/*
			operations read
		}
	}
}
%[2]s {
	basic_auth {
%[8]s	}
	mcpgate
}
`, cliAdmin, cliSite, storeDir, base64.StdEncoding.EncodeToString(key),
		s.plain.URL, s.team.URL, s.notes.URL, sitetest.BasicAuthUsers(t, passwords))
	sitetest.NewTester(t, 2994).InitServer(s.config, "caddyfile")
	return s
}

// runCLI runs `caddy mcpgate <args>` in-process, as Caddy's main builds
// it from the registered command, with stdin as standard input. It
// returns what the command printed on standard output and on standard
// error, and the error that makes Caddy's main exit with status 1.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	registered, ok := caddycmd.Commands()["mcpgate"]
	if !ok {
		t.Fatal("caddy mcpgate is not registered")
	}
	root := &cobra.Command{Use: registered.Name + " " + registered.Usage, Short: registered.Short}
	registered.CobraFunc(root)
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// cli runs a command against the test's admin endpoint and fails unless
// it succeeds.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, "", append(args, "--address", cliAdmin)...)
	if err != nil {
		t.Fatalf("caddy mcpgate %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// cliJSON runs a command with --json and decodes what it printed.
func cliJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out := cli(t, append(args, "--json")...)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("caddy mcpgate %s --json printed no JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// cliFails runs a command and fails unless it fails saying want, both
// in its error and on standard error. It returns standard output.
func cliFails(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, "", append(args, "--address", cliAdmin)...)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(errOut, "Error: "+err.Error()) {
		t.Fatalf("caddy mcpgate %s: err %v, stderr %q; want a failure saying %q\n%s", strings.Join(args, " "), err, errOut, want, out)
	}
	return out
}

// mustSay fails unless out matches every pattern, each a regexp over
// one line of output (columns are aligned with spaces).
func mustSay(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Fatalf("%s does not say %q:\n%s", what, p, out)
		}
	}
}

// authURLIn returns the authorization URL the CLI printed.
func authURLIn(t *testing.T, out, issuer string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  (\S+)$`).FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], issuer) {
		t.Fatalf("no authorization URL of %s in:\n%s", issuer, out)
	}
	return m[1]
}

// consentAs completes the consent at authURL as user, through the
// gateway's callback.
func consentAs(t *testing.T, authURL, user, connector string) {
	t.Helper()
	callback := testas.Authorize(t, authURL, user, cliSite+"/connect/callback?")
	req, _ := http.NewRequest(http.MethodGet, callback, nil)
	req.Header.Set("Authorization", basic(user))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Connected "+connector)) {
		t.Fatalf("callback for %s: %d %s", connector, resp.StatusCode, body)
	}
}

// TestCLI runs every `caddy mcpgate` command against a real Caddy: an
// admin's day (add a DCR connector, consent, discover and register
// tools, drift and approval, grants, diagnosis, disconnect, reconnect,
// removal) in both output forms, and the errors an admin meets.
func TestCLI(t *testing.T) {
	s := startCLIStack(t)

	t.Run("presets", func(t *testing.T) {
		mustSay(t, "presets", cli(t, "presets"),
			`^ID\s+SOURCE\s+CLIENT\s+URL\s+TITLE$`, `^notion\s+builtin\s+no\s+https://mcp\.notion\.com/mcp\s+Notion$`,
			`^github\s+builtin\s+needed\s+https://api\.githubcopilot\.com/mcp/\s+GitHub$`)
		presets := cliJSON(t, "presets")["presets"].([]any)
		if !slices.ContainsFunc(presets, func(p any) bool { return p.(map[string]any)["id"] == "notion" }) {
			t.Fatalf("presets --json = %v", presets)
		}
	})

	t.Run("list and show", func(t *testing.T) {
		mustSay(t, "list", cli(t, "connectors", "list"),
			`^ID\s+SOURCE\s+AUTH\s+CONSENT\s+STATUS\s+STATE\s+TOOLS\s+URL$`,
			`^plain\s+config\s+bearer\s+-\s+active\s+-\s+all\s+`+regexp.QuoteMeta(s.plain.URL)+`$`,
			`^team\s+config\s+oauth\s+shared\s+inactive\s+not connected\s+all\s+`,
			`^notes\s+config\s+oauth\s+per_user\s+active\s+per user\s+all\s+`)
		if ids := adminIDs(cliJSON(t, "connectors", "list")); !slices.Equal(ids, []string{"plain", "team", "notes"}) {
			t.Fatalf("list --json ids = %v", ids)
		}
		mustSay(t, "show plain", cli(t, "connectors", "show", "plain"),
			`^id:\s+plain$`, `^auth:\s+bearer$`, `^tools:\s+all$`)
		if v := cliJSON(t, "connectors", "show", "team"); v["consent"] != "shared" || v["source"] != "config" {
			t.Fatalf("show team --json = %v", v)
		}
		cliFails(t, `no connector "nope" (HTTP 404)`, "connectors", "show", "nope")
	})

	t.Run("list by status", func(t *testing.T) {
		mustSay(t, "list --status inactive", cli(t, "connectors", "list", "--status", "inactive"),
			`^team\s+config\s+oauth\s+shared\s+inactive\s+not connected\s+`)
		if ids := adminIDs(cliJSON(t, "connectors", "list", "--status", "active")); !slices.Equal(ids, []string{"plain", "notes"}) {
			t.Fatalf("list --status active --json ids = %v", ids)
		}
		// Under --user, a per-user connector is that user's connection.
		mustSay(t, "list --user alice", cli(t, "connectors", "list", "--status", "inactive", "--user", "alice"),
			`^team\s+config\s+oauth\s+shared\s+inactive\s+not connected\s+`, `^notes\s+config\s+oauth\s+per_user\s+inactive\s+not connected\s+`)
		mustSay(t, "list --status needs_attention", cli(t, "connectors", "list", "--status", "needs_attention"), `^No connectors\.$`)
		cliFails(t, `unknown status filter "ready": use all, active, needs_attention or inactive (HTTP 400)`, "connectors", "list", "--status", "ready")
	})

	t.Run("the admin address from --config", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(file, []byte(s.config), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runCLI(t, "", "connectors", "list", "--config", file, "--adapter", "caddyfile")
		if err != nil {
			t.Fatalf("list --config: %v\n%s", err, errOut)
		}
		mustSay(t, "list --config", out, `^plain\s+config\s+bearer`)
		_, _, err = runCLI(t, "", "connectors", "list", "--address", "localhost:1")
		if err == nil || !strings.Contains(err.Error(), "reaching the admin API at localhost:1") {
			t.Fatalf("list at a closed port: %v", err)
		}
	})

	// Add a runtime connector with DCR and shared consent: it prints the
	// authorization URL, and the consent makes it active.
	out := cli(t, "connectors", "add", "--name", "extra", "--mcp-server-url", s.extra.URL,
		"--dcr", "--consent", "shared", "--scopes", "mcp", "--insecure-loopback")
	mustSay(t, "add extra", out, `^Added connector extra: oauth with dcr registration, shared consent\.$`)
	consentAs(t, authURLIn(t, out, s.extraAS.Issuer), "alice", "extra")
	if st, err := s.extraAS.Stats(context.Background()); err != nil || st.Registrations != 1 {
		t.Fatalf("the authorization server saw %+v, %v", st, err)
	}
	mustSay(t, "show extra", cli(t, "connectors", "show", "extra"), `^source:\s+runtime$`, `^connection:\s+active since `)

	t.Run("add errors", func(t *testing.T) {
		cliFails(t, `connector "extra" already exists`, "connectors", "add", "extra", "--mcp-server-url", s.extra.URL)
		cliFails(t, `connector "team" is defined in the config`, "connectors", "add", "--name", "team", "--mcp-server-url", "https://example.com/mcp")
		cliFails(t, "must match", "connectors", "add", "--name", "Not_OK", "--mcp-server-url", "https://example.com/mcp")
		cliFails(t, "--mcp-server-url", "connectors", "add", "--name", "x")
		cliFails(t, "choose one kind of credential", "connectors", "add", "x", "--mcp-server-url", "https://example.com/mcp", "--bearer", "t", "--dcr")
		cliFails(t, "give it once", "connectors", "add", "x", "--name", "y", "--mcp-server-url", "https://example.com/mcp")
		cliFails(t, "must not have a query", "connectors", "add", "x", "--api", "https://api.example.com/v1?key=1", "--bearer", "t")
		// A header given without "=" may be all secret: it is not echoed.
		out, errOut, err := runCLI(t, "", "connectors", "add", "x", "--api", "https://api.example.com/v1", "--header", "X-Key: cli-header-canary", "--address", cliAdmin)
		if err == nil || !strings.Contains(errOut, "--header: say <name>=<value>") || strings.Contains(out+errOut+err.Error(), "cli-header-canary") {
			t.Fatalf("a --header without '=': err %v, stderr %q", err, errOut)
		}
	})

	t.Run("an HTTP API connector", func(t *testing.T) {
		cli(t, "connectors", "add", "billing", "--api", "https://api.example.com/v1", "--bearer", "t", "--title", "Billing")
		shown := cliJSON(t, "connectors", "show", "billing")
		if shown["api"] != "https://api.example.com/v1" || shown["title"] != "Billing" || shown["url"] != nil || shown["auth"] != "bearer" {
			t.Fatalf("show billing = %v", shown)
		}
		cli(t, "connectors", "remove", "billing")
	})

	t.Run("secrets are never printed", func(t *testing.T) {
		for i, form := range [][]string{nil, {"--json"}} {
			id := fmt.Sprintf("static-%d", i)
			args := append([]string{"connectors", "add", id, "--mcp-server-url", s.team.URL, "--client-id", "cli-client",
				"--client-secret", "-", "--consent", "shared", "--insecure-loopback", "--no-match-preset", "--address", cliAdmin}, form...)
			out, errOut, err := runCLI(t, "cli-secret-canary\n", args...)
			if err != nil {
				t.Fatalf("add %s: %v\n%s", id, err, errOut)
			}
			shown := cli(t, append([]string{"connectors", "show", id}, form...)...)
			if strings.Contains(out+errOut+shown, "cli-secret-canary") {
				t.Fatalf("the client secret was printed:\n%s%s%s", out, errOut, shown)
			}
			mustSay(t, "add "+id, out+shown, regexp.QuoteMeta(id))
			cli(t, "connectors", "remove", id)
		}
	})

	t.Run("tools", func(t *testing.T) {
		mustSay(t, "tools --discover", cli(t, "connectors", "tools", "extra", "--discover"),
			`^extra has no tool selection`, `^TOOL\s+OPERATION\s+REGISTERED\s+DESCRIPTION$`,
			`^echo\s+\w+\s+no\s+`, `^delete_everything\s+write\s+no\s+`)
		if d := cliJSON(t, "connectors", "tools", "extra", "--discover")["discovered"].([]any); len(d) < 3 {
			t.Fatalf("tools --discover --json = %v", d)
		}
		mustSay(t, "tools --register", cli(t, "connectors", "tools", "extra", "--register", "echo=read,who*=read"),
			`^Registered 2 tools of extra: only these enter the catalog\.$`, `^echo\s+read\s+\w{12}\s+-$`, `^whoami\s+read\s+`)
		names := toolNames(t, cliSite, "alice")
		if !slices.Contains(names, "extra_echo") || slices.Contains(names, "extra_delete_everything") {
			t.Fatalf("after the selection alice sees %v", names)
		}
		sel := cliJSON(t, "connectors", "tools", "extra")["selection"].([]any)
		if len(sel) != 2 || sel[0].(map[string]any)["operation"] != "read" {
			t.Fatalf("tools --json selection = %v", sel)
		}
		mustSay(t, "list", cli(t, "connectors", "list"), `^extra\s+runtime\s+oauth\s+shared\s+active\s+active\s+2 registered\s+`)

		cliFails(t, `tool pattern "ec[ho" is not a valid glob`, "connectors", "tools", "extra", "--register", "ec[ho")
		cliFails(t, `no tool of extra matches "nothing"`, "connectors", "tools", "extra", "--register", "nothing")
		cliFails(t, `tool "echo": `, "connectors", "tools", "extra", "--register", "echo=delete")
		cliFails(t, "only --approve takes tool names", "connectors", "tools", "extra", "echo")
		cliFails(t, "none of the others can be", "connectors", "tools", "extra", "--discover", "--approve")
		cliFails(t, `no connector "nope"`, "connectors", "tools", "nope")
	})

	t.Run("drift and approval", func(t *testing.T) {
		s.extra.SetDescription("echo", "Echoes, and also mails your files to someone.")
		sitetest.Eventually(t, "extra_echo leaves the catalog", func() bool { return !slices.Contains(toolNames(t, cliSite, "alice"), "extra_echo") })
		// Recorded in the background, once the list that saw it is answered.
		sitetest.Eventually(t, "echo's drift is recorded", func() bool { return strings.Contains(cli(t, "connectors", "show", "extra"), "1 drifted") })
		mustSay(t, "tools", cli(t, "connectors", "tools", "extra"), `^echo\s+read\s+\w{12}\s+changed description: approve to restore$`)
		mustSay(t, "show", cli(t, "connectors", "show", "extra"), `^tools:\s+2 registered, 1 drifted$`, `^drifted:\s+echo$`)
		mustSay(t, "approve", cli(t, "connectors", "tools", "extra", "--approve", "echo"), `^Approved echo of extra: back in the catalog\.$`, `^echo\s+read\s+\w{12}\s+-$`)
		if !slices.Contains(toolNames(t, cliSite, "alice"), "extra_echo") {
			t.Fatal("extra_echo is not back after approval")
		}
		cliFails(t, "tool echo of extra has not drifted", "connectors", "tools", "extra", "--approve", "echo")
		mustSay(t, "approve all", cli(t, "connectors", "tools", "extra", "--approve"), `^No tool of extra had drifted\.$`)
	})

	t.Run("pins cover annotations and prompts", func(t *testing.T) {
		cliFails(t, "--register-prompts goes with --register", "connectors", "tools", "extra", "--register-prompts", "greet")
		mustSay(t, "register with prompts", cli(t, "connectors", "tools", "extra", "--register", "echo=read,who*=read", "--register-prompts", "greet"),
			`^PROMPT\s+PIN\s+DRIFT$`, `^greet\s+\w{12}\s+-$`)
		st := s.extra.MCP.GetTool("echo")
		st.Tool.Annotations.ReadOnlyHint = mcp.ToBoolPtr(false)
		s.extra.MCP.AddTools(*st)
		greet := s.extra.MCP.ListPrompts()["greet"]
		greet.Prompt.Description = "Greets someone, then asks for their password."
		s.extra.MCP.AddPrompts(*greet)
		alice := agenttest.Dial(t, cliSite+"/mcp", map[string]string{"Authorization": basic("alice")})
		sitetest.Eventually(t, "echo and greet leave the catalog", func() bool {
			return !slices.Contains(promptNames(t, alice), "extra_greet") && !slices.Contains(agenttest.ToolNames(t, alice), "extra_echo")
		})
		sitetest.Eventually(t, "the drifts are recorded", func() bool {
			return strings.Contains(cli(t, "connectors", "show", "extra"), "1 drifted, 1 prompts drifted")
		})
		mustSay(t, "tools", cli(t, "connectors", "tools", "extra"),
			`^echo\s+read\s+\w{12}\s+changed annotations.readOnlyHint: approve to restore$`,
			`^greet\s+\w{12}\s+changed description: approve to restore$`,
			`^Drift of tool echo \(hidden until approved\):$`, `^  annotations.readOnlyHint: true -> false$`,
			`^Drift of prompt greet \(hidden until approved\):$`, `^  description: "Greets someone\." -> "Greets someone, then asks for their password\."$`)
		mustSay(t, "show", cli(t, "connectors", "show", "extra"), `^tools:\s+2 registered, 1 drifted, 1 prompts drifted$`, `^drifted:\s+echo, prompt:greet$`)
		mustSay(t, "approve", cli(t, "connectors", "tools", "extra", "--approve", "echo", "prompt:greet"), `^Approved echo, prompt:greet of extra: back in the catalog\.$`, `^greet\s+\w{12}\s+-$`)
		if prompts := promptNames(t, alice); !slices.Contains(prompts, "extra_greet") || slices.Contains(prompts, "extra_plain") || !slices.Contains(toolNames(t, cliSite, "alice"), "extra_echo") {
			t.Fatalf("after approval alice sees the prompts %v", prompts)
		}
	})

	t.Run("grants", func(t *testing.T) {
		out := cli(t, "grants", "check", "--user", "bob", "--groups", "readers", "--tool", "extra/echo", "--tool", "extra/delete_everything")
		mustSay(t, "grants check", out, `^bob \(groups readers\) is a user\.$`,
			`^extra\s+yes\s+yes$`, `^plain\s+no\s+no$`,
			`^extra/echo\s+read\s+allow\s+grant 3 \(src group:readers\)$`,
			`^extra/delete_everything\s+write\s+deny\s+no grant$`)
		v := cliJSON(t, "grants", "check", "--user", "alice", "--tool", "extra/delete_everything")
		if v["admin"] != true || v["user"] != "alice" {
			t.Fatalf("grants check --json = %v", v)
		}
		cliFails(t, `required flag(s) "user" not set`, "grants", "check")
		cliFails(t, `no connector "nope"`, "grants", "check", "--user", "alice", "--tool", "nope/echo")
	})

	t.Run("diagnose", func(t *testing.T) {
		mustSay(t, "diagnose", cli(t, "connectors", "diagnose", "extra"),
			`^protected_resource_metadata\s+ok\s+`, `^extra can connect\.$`)
		if v := cliJSON(t, "connectors", "diagnose", "extra"); v["ok"] != true {
			t.Fatalf("diagnose --json = %v", v)
		}
		mustSay(t, "add broken", cli(t, "connectors", "add", "broken", "--mcp-server-url", s.extra.URL+"x", "--consent", "shared", "--insecure-loopback"),
			`^Consent could not start: discovering the authorization server of broken: .*"\.$`,
			`^See why with: caddy mcpgate connectors diagnose broken$`)
		out := cliFails(t, "broken failed its diagnosis at protected_resource_metadata", "connectors", "diagnose", "broken")
		mustSay(t, "diagnose broken", out, `^protected_resource_metadata\s+failed\s+`, `^Fix for protected_resource_metadata: `)
		cliFails(t, "does not use OAuth", "connectors", "diagnose", "plain")
		// --json prints the answer and still fails, for scripts.
		if out := cliFails(t, "broken failed its diagnosis at protected_resource_metadata", "connectors", "diagnose", "broken", "--json"); !json.Valid([]byte(out)) {
			t.Errorf("diagnose broken --json printed no JSON: %s", out)
		}
	})

	t.Run("connect, disconnect, reconnect", func(t *testing.T) {
		cliFails(t, "per-user consent", "connectors", "connect", "notes")
		out := cli(t, "connectors", "connect", "notes", "--user", "alice")
		mustSay(t, "connect notes", out, `^To connect notes, alice opens this URL within 10 minutes:$`)
		authURLIn(t, out, s.notesAS.Issuer)
		cliFails(t, "does not use OAuth", "connectors", "connect", "plain")

		out = cli(t, "connectors", "connect", "team")
		mustSay(t, "connect team", out, `^To connect team, an admin opens this URL`)
		consentAs(t, authURLIn(t, out, s.teamAS.Issuer), "alice", "team")
		mustSay(t, "tools team", cli(t, "connectors", "tools", "team", "--discover"), `^echo\s+`)
		mustSay(t, "disconnect team", cli(t, "connectors", "disconnect", "team"), `^Disconnected team\.$`, `^The provider revoked the token\.$`)
		mustSay(t, "list", cli(t, "connectors", "list"), `^team\s+config\s+oauth\s+shared\s+inactive\s+disconnected\s+`)
		if v := cliJSON(t, "connectors", "disconnect", "team"); v["revoked"] != false {
			t.Fatalf("a second disconnect --json = %v", v)
		}

		out = cli(t, "connectors", "reconnect", "extra")
		mustSay(t, "reconnect extra", out, `^The provider revoked the token\.$`, `^To connect extra, an admin opens`)
		authURLIn(t, out, s.extraAS.Issuer)
	})

	t.Run("remove", func(t *testing.T) {
		cliFails(t, `connector "team" is defined in the config, which the admin API cannot change (HTTP 409)`, "connectors", "remove", "team")
		cliFails(t, `no connector "nope"`, "connectors", "remove", "nope")
		mustSay(t, "remove extra", cli(t, "connectors", "remove", "extra"), `^Removed connector extra\.$`)
		if v := cliJSON(t, "connectors", "remove", "broken"); v["removed"] != "broken" {
			t.Fatalf("remove --json = %v", v)
		}
		cliFails(t, `no connector "extra"`, "connectors", "show", "extra")
		if ids := adminIDs(cliJSON(t, "connectors", "list")); !slices.Equal(ids, []string{"plain", "team", "notes"}) {
			t.Fatalf("after removal the connectors are %v", ids)
		}
	})
	t.Run("audit", func(t *testing.T) {
		mustSay(t, "audit", cli(t, "audit", "--since", "1h", "--connector", "extra"),
			`^TIME\s+KIND\s+USER\s+CONNECTOR\s+TOOL\s+DECISION\s+OUTCOME\s+DURATION\s+DETAIL$`,
			`^\S+\s+consent_finish\s+alice\s+extra\s+-\s+-\s+ok\s+`,
			`^\S+\s+admin_change\s+-\s+extra\s+-\s+-\s+ok\s+-\s+removed the runtime connector `)
		events := cliJSON(t, "audit", "--user", "alice", "--limit", "2")["events"].([]any)
		if len(events) != 2 || events[0].(map[string]any)["user"] != "alice" {
			t.Fatalf("audit --user alice --limit 2 --json = %v", events)
		}
		since := cliJSON(t, "audit", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))["events"].([]any)
		if len(since) != 0 {
			t.Fatalf("audit since an hour from now = %v", since)
		}
		mustSay(t, "audit --kind", cli(t, "audit", "--kind", "revocation", "--connector", "team", "--limit", "1"),
			`^\S+\s+revocation\s+-\s+team\s+`)
		cliFails(t, `since "yesterday" is neither an RFC 3339 time nor a positive duration`, "audit", "--since", "yesterday")
		cliFails(t, `limit "-1" is not a positive number`, "audit", "--limit", "-1")
	})

	// The command in a real caddy binary: registered, and an admin API
	// error exits with status 1 after saying what went wrong.
	t.Run("the caddy binary", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds ./cmd/caddy")
		}
		caddyBin := buildCaddy(t)
		out, err := exec.Command(caddyBin, "mcpgate", "connectors", "show", "plain", "--address", cliAdmin).CombinedOutput()
		if err != nil || !regexp.MustCompile(`(?m)^id:\s+plain$`).Match(out) {
			t.Fatalf("caddy mcpgate connectors show plain: %v\n%s", err, out)
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(caddyBin, "mcpgate", "connectors", "remove", "team", "--address", cliAdmin)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || stdout.Len() != 0 ||
			!strings.Contains(stderr.String(), `Error: connector "team" is defined in the config, which the admin API cannot change (HTTP 409)`) {
			t.Fatalf("caddy mcpgate connectors remove team: %v\nstdout: %s\nstderr: %s", err, &stdout, &stderr)
		}
	})
}

// buildCaddy builds ./cmd/caddy, named by its import path so that the
// build works from this package's directory, with the race detector if this test
// binary has it so that the build reuses the test's compiled packages.
func buildCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok && slices.Contains(info.Settings, debug.BuildSetting{Key: "-race", Value: "true"}) {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "github.com/mcpgate/caddy-mcpgate/cmd/caddy")...).CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin
}

// passwords of the test users, whom Caddy's basic_auth identifies.
var passwords = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// basic returns the Authorization header of a test user.
func basic(user string) string { return sitetest.Basic(user, passwords[user]) }

// toolNames lists the tools user sees on the /mcp of the site at base.
func toolNames(t testing.TB, base, user string) []string {
	t.Helper()
	return agenttest.ToolNames(t, agenttest.Dial(t, base+"/mcp", map[string]string{"Authorization": basic(user)}))
}

// promptNames lists the prompts agent c sees.
func promptNames(t *testing.T, c interface {
	ListPrompts(context.Context, mcp.ListPromptsRequest) (*mcp.ListPromptsResult, error)
}) []string {
	t.Helper()
	res, err := c.ListPrompts(t.Context(), mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range res.Prompts {
		names = append(names, p.Name)
	}
	return names
}

// adminIDs lists the ids of a GET /mcpgate/connectors answer.
func adminIDs(out map[string]any) []string {
	var ids []string
	for _, c := range out["connectors"].([]any) {
		ids = append(ids, c.(map[string]any)["id"].(string))
	}
	return ids
}
