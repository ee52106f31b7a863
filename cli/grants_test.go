package cli_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCLIGrants runs `grants list|add|remove|check` against a real Caddy:
// a runtime grant with a reason lets bob use a tool at once, the list
// shows it after the config's, check names it, the audit log keeps its
// reason, its removal takes the tool away, and the errors say what is
// wrong.
func TestCLIGrants(t *testing.T) {
	startCLIStack(t)

	mustSay(t, "grants list", cli(t, "grants", "list"),
		`^ID\s+SOURCE\s+SRC\s+ROLE\s+GRANTS\s+CREATED\s+BY\s+REASON$`,
		`^1\s+config\s+user:alice\s+user\s+connectors plain team notes extra\s+-\s+-\s+-$`,
		`^2\s+config\s+user:alice\s+admin\s+connectors team\s+-\s+-\s+-$`,
		`^3\s+config\s+group:readers\s+user\s+tools extra/\*; operations read\s+-\s+-\s+-$`)
	if slices.Contains(toolNames(t, cliSite, "bob"), "plain_echo") {
		t.Fatal("bob sees plain_echo before any grant")
	}

	out := cli(t, "grants", "add", "--users", "bob", "--tools", "plain/echo,plain/whoami", "--operations", "read", "--reason", "covering for alice this week")
	m := regexp.MustCompile(`(?m)^Added grant (g-[a-z2-7]{13}) for user:bob: tools plain/echo plain/whoami; operations read\.$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("grants add printed:\n%s", out)
	}
	id := m[1]
	mustSay(t, "grants add", out, `^It applies from the next request on\. Remove it with: caddy mcpgate grants remove `+id+`$`)
	// echo is read-only; whoami is not, which the grant leaves out.
	if names := toolNames(t, cliSite, "bob"); !slices.Contains(names, "plain_echo") || slices.Contains(names, "plain_whoami") {
		t.Fatalf("under the runtime grant bob sees %v", names)
	}

	mustSay(t, "grants list", cli(t, "grants", "list"),
		`^`+id+`\s+runtime\s+user:bob\s+user\s+tools plain/echo plain/whoami; operations read\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+127\.0\.0\.1:\d+\s+covering for alice this week$`)
	listed := cliJSON(t, "grants", "list")["grants"].([]any)
	if last := listed[len(listed)-1].(map[string]any); len(listed) != 4 || last["id"] != id || last["reason"] != "covering for alice this week" {
		t.Fatalf("grants list --json = %v", listed)
	}
	mustSay(t, "grants check", cli(t, "grants", "check", "--user", "bob", "--tool", "plain/whoami", "--tool", "plain/delete_everything"),
		`^plain/whoami\s+write\s+deny\s+no grant$`,
		`^plain/delete_everything\s+write\s+deny\s+no grant$`)
	mustSay(t, "grants check", cli(t, "grants", "check", "--user", "alice", "--tool", "plain/whoami"),
		`^plain/whoami\s+write\s+allow\s+grant 1 \(src user:alice\)$`)

	// A grant without the read-only limit is what check explains by its
	// id and reason (check assumes write for a tool it knows no operation
	// of, and the first grant is read-only).
	second, _ := cliJSON(t, "grants", "add", "--src", "user:bob", "--connectors", "plain", "--reason", "on call")["id"].(string)
	mustSay(t, "grants check", cli(t, "grants", "check", "--user", "bob", "--tool", "plain/whoami"),
		`^plain/whoami\s+write\s+allow\s+runtime grant `+second+` \(reason: on call\)$`)

	mustSay(t, "audit", cli(t, "audit", "--user", "bob", "--kind", "admin_change"),
		`^\S+\s+admin_change\s+bob\s+-\s+-\s+-\s+ok\s+-\s+added the runtime grant `+id+` \(src user:bob; tools`)
	events := cliJSON(t, "audit", "--user", "bob", "--kind", "admin_change")["events"].([]any)
	want := `added the runtime grant ` + id + ` (src user:bob; tools plain/echo plain/whoami; operations read) because "covering for alice this week" (POST /mcpgate/grants from 127.0.0.1:`
	if !slices.ContainsFunc(events, func(e any) bool { return strings.HasPrefix(e.(map[string]any)["detail"].(string), want) }) {
		t.Fatalf("no audit event says %q: %v", want, events)
	}

	t.Run("errors", func(t *testing.T) {
		cliFails(t, `required flag(s) "reason" not set`, "grants", "add", "--users", "bob", "--connectors", "plain")
		cliFails(t, "needs a reason: say why with \"reason\" (the CLI's --reason) (HTTP 400)", "grants", "add", "--users", "bob", "--connectors", "plain", "--reason", " ")
		cliFails(t, `grant: tools: pattern "plain/a**": ** must be a whole segment, as in "notion/**" (HTTP 400)`, "grants", "add", "--users", "bob", "--tools", "plain/a**", "--reason", "r")
		cliFails(t, "say whom the grant is for with --users, --groups or --src", "grants", "add", "--tools", "plain/*", "--reason", "r")
		cliFails(t, `no grant "g-00000000" (HTTP 404)`, "grants", "remove", "g-00000000")
		cliFails(t, "grant 2 is defined in the config, which the admin API cannot change: change it in the Caddyfile (HTTP 409)", "grants", "remove", "2")
	})

	mustSay(t, "grants remove", cli(t, "grants", "remove", id),
		`^Removed grant `+id+` \(tools plain/echo plain/whoami; operations read\), added because: covering for alice this week$`)
	if v := cliJSON(t, "grants", "remove", second); v["removed"] != second {
		t.Fatalf("grants remove --json = %v", v)
	}
	if names := toolNames(t, cliSite, "bob"); slices.Contains(names, "plain_echo") || slices.Contains(names, "plain_whoami") {
		t.Fatalf("after the grants were removed bob sees %v", names)
	}
	if listed := cliJSON(t, "grants", "list")["grants"].([]any); len(listed) != 3 {
		t.Fatalf("after the removals the grants are %v", listed)
	}
}
