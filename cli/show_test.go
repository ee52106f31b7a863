package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
)

// TestCLIShow runs `connectors show` against a real Caddy: a static
// connector's last use, by anyone and --user; a shared OAuth connector
// before its consent (nothing discovered, no client yet) and after it
// (the discovered issuer and endpoints, the registered client with its
// secret only as stored, the scopes, the times); a per-user connector's
// connection by --user; and the details in --json, with no secret.
func TestCLIShow(t *testing.T) {
	s := startCLIStack(t)
	mustSay(t, "show plain", cli(t, "connectors", "show", "plain"), `^id:\s+plain$`, `^last used:\s+never$`)
	c := agenttest.Dial(t, cliSite+"/mcp", map[string]string{"Authorization": basic("alice")})
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: "plain_echo", Arguments: map[string]any{"message": "hi"}}})
	if err != nil || res.IsError {
		t.Fatalf("alice calling plain_echo: %v %v", err, res)
	}
	when := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*`
	mustSay(t, "show plain", cli(t, "connectors", "show", "plain"), `^last used:\s+`+when+`$`)
	mustSay(t, "show plain --user alice", cli(t, "connectors", "show", "plain", "--user", "alice"),
		`^user:\s+alice$`, `^last used:\s+`+when+` \(by alice\)$`)
	mustSay(t, "show plain --user bob", cli(t, "connectors", "show", "plain", "--user", "bob"), `^last used:\s+never \(by bob\)$`)

	mustSay(t, "show team", cli(t, "connectors", "show", "team"), `^issuer:\s+not discovered yet$`,
		`^client:\s+none yet \(registration auto\)$`, `^redirect uri:\s+`+regexp.QuoteMeta(cliSite+"/connect/callback")+`$`)
	consentAs(t, authURLIn(t, cli(t, "connectors", "connect", "team"), s.teamAS.Issuer), "alice", "team")
	issuer := regexp.QuoteMeta(s.teamAS.Issuer)
	mustSay(t, "show team after consent", cli(t, "connectors", "show", "team"),
		`^connection:\s+active since `, `^issuer:\s+`+issuer+` \(discovered\)$`, `^token endpoint:\s+`+issuer+`/\S+$`,
		`^client:\s+\S+ \(dcr\)$`, `^client secret:\s+stored$`, `^scopes:\s+mcp$`, `^refresh token:\s+stored$`,
		`^connected:\s+`+when+`$`, `^token type:\s+Bearer$`, `^token updated:\s+`+when+`$`)

	mustSay(t, "show notes --user alice", cli(t, "connectors", "show", "notes", "--user", "alice"),
		`^user:\s+alice$`, `^connection:\s+not connected$`)
	consentAs(t, authURLIn(t, cli(t, "connectors", "connect", "notes", "--user", "alice"), s.notesAS.Issuer), "alice", "notes")
	mustSay(t, "show notes --user alice", cli(t, "connectors", "show", "notes", "--user", "alice"),
		`^connection:\s+active since `, `^client:\s+\S+ \(dcr\)$`)
	mustSay(t, "show notes", cli(t, "connectors", "show", "notes"), `^connection:\s+per user$`)

	out := cli(t, "connectors", "show", "team", "--json")
	v := cliJSON(t, "connectors", "show", "team")
	oauth, _ := v["details"].(map[string]any)["oauth"].(map[string]any)
	if client, _ := oauth["client"].(map[string]any); client["secret_stored"] != true || strings.Contains(out, "client_secret\"") {
		t.Fatalf("show team --json: %s", out)
	}
	cliFails(t, `no connector "nope" (HTTP 404)`, "connectors", "show", "nope", "--user", "alice")
}
