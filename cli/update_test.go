package cli_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
)

// echoAs calls extra_echo, or another connector's, as user on the CLI
// stack's site, and returns the text of the answer.
func echoAs(t *testing.T, user, connector string) string {
	t.Helper()
	c := agenttest.Dial(t, cliSite+"/mcp", map[string]string{"Authorization": basic(user)})
	res, err := agenttest.Call(c, connector+"_echo", map[string]any{"message": "hi " + user})
	if err != nil {
		return err.Error()
	}
	if len(res.Content) > 0 {
		if tc, ok := res.Content[0].(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// TestCLIUpdate runs connectors update, enable and disable against a real
// Caddy: a new title keeps the tokens, a disabled connector's tools leave
// the list and its calls are refused until it is enabled again, with no
// new consent; a config connector can be switched but not changed; a new
// URL revokes the tokens at the provider and says so; and the errors an
// admin meets.
func TestCLIUpdate(t *testing.T) {
	s := startCLIStack(t)
	out := cli(t, "connectors", "add", "extra", "--mcp-server-url", s.extra.URL, "--dcr", "--consent", "shared",
		"--scopes", "mcp", "--insecure-loopback", "--client-name", "Acme extra")
	consentAs(t, authURLIn(t, out, s.extraAS.Issuer), "alice", "extra")
	if got := echoAs(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
		t.Fatalf("extra after its consent: %q", got)
	}
	consented := func() int {
		st, err := s.extraAS.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.Authorizations
	}
	before := consented()

	mustSay(t, "update --title", cli(t, "connectors", "update", "extra", "--title", "Extra tools", "--description", "Echo and friends"),
		`^Updated connector extra\.$`, `^Its tokens were kept: `)
	mustSay(t, "show", cli(t, "connectors", "show", "--name", "extra"), `^title:\s+Extra tools$`, `^description:\s+Echo and friends$`)
	if got := echoAs(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
		t.Fatalf("extra after a new title: %q", got)
	}
	if v := cliJSON(t, "connectors", "update", "extra", "--description", ""); v["description"] != nil || len(v["revoked"].([]any)) != 0 {
		t.Fatalf("update --description '' --json = %v", v)
	}

	mustSay(t, "disable", cli(t, "connectors", "disable", "extra"), `^Disabled connector extra\.$`, `^It is disabled: `)
	if names := toolNames(t, cliSite, "alice"); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "extra_") }) {
		t.Errorf("the disabled extra's tools are listed: %v", names)
	}
	if got := echoAs(t, "alice", "extra"); got != "connector extra is disabled by an admin" {
		t.Errorf("a call to the disabled extra: %q", got)
	}
	mustSay(t, "enable", cli(t, "connectors", "enable", "--name", "extra"), `^Enabled connector extra\.$`)
	if got := echoAs(t, "alice", "extra"); !strings.Contains(got, "hi alice") {
		t.Fatalf("extra enabled again: %q", got)
	}
	if after := consented(); after != before {
		t.Errorf("the provider saw %d new consents for a title, a disable and an enable", after-before)
	}

	mustSay(t, "disable team", cli(t, "connectors", "disable", "team"), `^Disabled connector team\.$`)
	if v := cliJSON(t, "connectors", "show", "team"); v["status"] != "disabled" {
		t.Errorf("show team after disable: %v", v)
	}
	cli(t, "connectors", "enable", "team")

	cliFails(t, `connector "plain" is defined in the config, which the admin API cannot change but for enabled: change it in the Caddyfile (HTTP 409)`, "connectors", "update", "plain", "--title", "x")
	cliFails(t, `no connector "nope" (HTTP 404)`, "connectors", "update", "nope", "--title", "x")
	cliFails(t, `no connector "nope" (HTTP 404)`, "connectors", "enable", "nope")
	cliFails(t, "scheme must be http or https (HTTP 400)", "connectors", "update", "extra", "--mcp-server-url", "ftp://example.com/mcp")

	st, err := s.extraAS.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mustSay(t, "update --mcp-server-url", cli(t, "connectors", "update", "extra", "--mcp-server-url", s.notes.URL),
		`^Updated connector extra\.$`, `^Its tokens were revoked: the resource changed; `, `^The provider revoked the token\.$`)
	if after, err := s.extraAS.Stats(context.Background()); err != nil || after.Revocations <= st.Revocations {
		t.Errorf("the provider saw no revocation: %+v, %v", after, err)
	}
}
