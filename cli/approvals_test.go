package cli_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
)

// waitsFor calls tool as agent c and returns the id of the approval its
// answer asks for, failing on any other answer.
func waitsFor(t *testing.T, c *client.Client, tool string) string {
	t.Helper()
	res, err := agenttest.Call(c, tool, map[string]any{})
	if err != nil || !res.IsError {
		t.Fatalf("%s: want a tool error asking for approval, got %+v, %v", tool, res, err)
	}
	s, _ := res.StructuredContent.(map[string]any)
	id, _ := s["approval_id"].(string)
	if s["status"] != "needs_approval" || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "/approvals/"+id) {
		t.Fatalf("%s: %+v", tool, res)
	}
	return id
}

// TestCLIApprovals runs `approvals list|approve|deny` against a real
// Caddy: a write call under a grant with approve write waits; the list
// shows it without its arguments (with --detail, with them); approve lets
// the retry through once; deny makes the retry a clear tool error.
func TestCLIApprovals(t *testing.T) {
	startCLIStack(t)
	mustSay(t, "grants add", cli(t, "grants", "add", "--users", "bob", "--connectors", "plain", "--approve", "write", "--reason", "writes need a second pair of eyes"),
		`^Added grant g-[a-z2-7]{13} for user:bob: connectors plain; approve write\.$`)
	bob := agenttest.Dial(t, cliSite+"/mcp", map[string]string{"Authorization": basic("bob")})
	if res, err := agenttest.Call(bob, "plain_echo", map[string]any{"message": "hi"}); err != nil || res.IsError {
		t.Fatalf("a read-only tool asked for approval: %+v %v", res, err)
	}
	id := waitsFor(t, bob, "plain_whoami")

	out := cli(t, "approvals", "list")
	mustSay(t, "approvals list", out, `^ID\s+STATE\s+CALLER\s+CONNECTOR\s+TOOL\s+EXPIRES\s+DECIDED BY$`,
		`^`+regexp.QuoteMeta(id)+`\s+pending\s+bob\s+plain\s+whoami\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-$`)
	if strings.Contains(out, "arguments") {
		t.Fatalf("the list shows arguments without --detail:\n%s", out)
	}
	mustSay(t, "approvals list --detail", cli(t, "approvals", "list", "--detail"), `^  arguments: \{\}$`)

	mustSay(t, "approvals approve", cli(t, "approvals", "approve", id),
		`^Approval `+regexp.QuoteMeta(id)+` is approved: bob calling plain/whoami\.$`)
	if res, err := agenttest.Call(bob, "plain_whoami", map[string]any{}); err != nil || res.IsError {
		t.Fatalf("the retry after approval: %+v %v", res, err)
	}
	again := waitsFor(t, bob, "plain_whoami") // used once: a replay asks anew
	if again == id {
		t.Fatal("a replay used the approval")
	}
	cliFails(t, "no longer pending", "approvals", "approve", id)

	mustSay(t, "approvals deny", cli(t, "approvals", "deny", again), `^Approval `+regexp.QuoteMeta(again)+` is denied`)
	res, err := agenttest.Call(bob, "plain_whoami", map[string]any{})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "denied by an approver") {
		t.Fatalf("the denied call: %+v %v", res, err)
	}
	cliFails(t, "no approval request", "approvals", "deny", "AAAAAAAAAAAAAAAAAAAAAA")
}
