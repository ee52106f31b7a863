package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// cliServiceSecret is the service client's secret, which no output may
// show.
const cliServiceSecret = "cli-service-secret-canary"

// TestCLIClientCredentials: `connectors add --grant client-credentials`
// adds a connector that gets its token from a real authorization server
// with the client's own credentials: the command says no consent is
// needed, alice's and bob's agent calls go through the gateway with no
// consent at all on one token request, a connect is refused, and show
// names the grant; `connectors update --grant client-credentials` turns
// a per-user connector into one.
func TestCLIClientCredentials(t *testing.T) {
	startCLIStack(t)
	up := testupstream.StartT(t, testupstream.Options{Name: "svc"})
	as := testas.Start(t, testas.Options{Resource: up.URL, ServiceClients: map[string]string{"cli-svc": cliServiceSecret}})
	up.SetGuard(as.Protect)

	out, errOut, err := runCLI(t, cliServiceSecret+"\n", "connectors", "add", "svc", "--mcp-server-url", up.URL,
		"--grant", "client-credentials", "--client-id", "cli-svc", "--client-secret", "-", "--insecure-loopback", "--address", cliAdmin)
	if err != nil {
		t.Fatalf("add svc: %v\n%s%s", err, out, errOut)
	}
	mustSay(t, "add svc", out, `^Added connector svc: oauth with .* shared consent\.$`,
		`^No consent: it gets its token with the client credentials grant at its first call\.$`)
	if strings.Contains(out+errOut, cliServiceSecret) {
		t.Fatalf("add svc shows the secret:\n%s%s", out, errOut)
	}
	cli(t, "grants", "add", "--users", "alice,bob", "--connectors", "svc", "--reason", "a service connector for everyone")
	for _, user := range []string{"alice", "bob"} {
		c := agenttest.Dial(t, cliSite+"/mcp", map[string]string{"Authorization": basic(user)})
		if res, err := agenttest.Call(c, "svc_echo", map[string]any{"message": "hi"}); err != nil || res.IsError {
			t.Fatalf("%s's call: %+v %v", user, res, err)
		}
	}
	st, err := as.Stats(context.Background())
	if err != nil || st.Authorizations != 0 || st.TokenRequests["client_credentials"] != 1 || len(st.TokenErrors) != 0 {
		t.Fatalf("the authorization server saw %+v, %v", st, err)
	}
	cliFails(t, "needs no consent", "connectors", "connect", "svc")
	mustSay(t, "show svc", cli(t, "connectors", "show", "svc"), `^\s*grant:\s+client_credentials$`, `^\s*client:\s+cli-svc \(static\)$`)

	// An update switches a per-user connector to the grant, with shared
	// consent: bob's call then needs no consent either.
	out, errOut, err = runCLI(t, cliServiceSecret+"\n", "connectors", "add", "svc2", "--mcp-server-url", up.URL,
		"--client-id", "cli-svc", "--client-secret", "-", "--insecure-loopback", "--address", cliAdmin)
	if err != nil {
		t.Fatalf("add svc2: %v\n%s%s", err, out, errOut)
	}
	mustSay(t, "update svc2", cli(t, "connectors", "update", "svc2", "--grant", "client-credentials"), `svc2`)
	if v := cliJSON(t, "connectors", "show", "svc2"); v["consent"] != "shared" {
		t.Fatalf("show svc2 --json = %v, want shared consent", v)
	}
	cli(t, "grants", "add", "--users", "bob", "--connectors", "svc2", "--reason", "the second service connector")
	bob := agenttest.Dial(t, cliSite+"/mcp", map[string]string{"Authorization": basic("bob")})
	if res, err := agenttest.Call(bob, "svc2_echo", map[string]any{"message": "hi"}); err != nil || res.IsError {
		t.Fatalf("bob's call to svc2: %+v %v", res, err)
	}
}
