package cli_test

import (
	"strings"
	"testing"
)

// TestCLIToolSearch runs `tools search` against a real Caddy: bob, whose
// runtime grant allows plain's echo alone, finds it and never plain's
// other tools, which the catalog holds; a per-user connector alice has
// not connected is said to be skipped; --json prints the admin API's
// answer; a bad limit is the admin API's clear error.
func TestCLIToolSearch(t *testing.T) {
	startCLIStack(t)
	cli(t, "grants", "add", "--users", "bob", "--tools", "plain/echo", "--reason", "checking what search shows")

	out := cli(t, "tools", "search", "return", "the", "message", "--user", "bob")
	mustSay(t, "tools search", out,
		`^bob finds, best first, for "return the message":$`,
		`^TOOL\s+CONNECTOR\s+TITLE\s+DESCRIPTION$`,
		`^plain_echo\s+plain\s+Echo\s+Returns the message it is given\.$`)
	for _, q := range []string{"delete everything", "plain_delete_everything", "credentials"} {
		for _, line := range strings.Split(cli(t, "tools", "search", q, "--user", "bob", "--limit", "50"), "\n") {
			if strings.HasPrefix(line, "plain_") && !strings.HasPrefix(line, "plain_echo ") {
				t.Errorf("bob's search for %q shows a tool he may not call: %s", q, line)
			}
		}
	}
	mustSay(t, "tools search for nothing bob has", cli(t, "tools", "search", "delete everything", "--user", "bob"),
		`^bob finds no tool for "delete everything"\.$`)

	out = cli(t, "tools", "search", "echo", "--user", "alice", "--groups", "staff")
	mustSay(t, "alice's search", out, `^alice \(groups staff\) finds, best first, for "echo":$`, `^plain_echo\s+plain\s`,
		`^Not searched:$`, `^  notes: not connected: `)

	v := cliJSON(t, "tools", "search", "echo", "--user", "bob")
	if tools, _ := v["tools"].([]any); len(tools) != 1 || tools[0].(map[string]any)["tool"] != "echo" {
		t.Errorf("--json: %v", v)
	}
	cliFails(t, "from 1 to 50", "tools", "search", "echo", "--user", "bob", "--limit", "-3")
	cliFails(t, `required flag(s) "user" not set`, "tools", "search", "echo")
}
