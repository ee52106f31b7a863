package mcpgate_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/client"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// grantsConfig is a Caddyfile with the connector "wiki" granted to alice
// alone (grant 1; grant 2 makes her an admin of it), on the storage that
// storage names.
func grantsConfig(t *testing.T, wiki *testupstream.Server, storage string) string {
	t.Helper()
	return fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
%s
		connector wiki {
			url %s
		}
		grant {
			src user:alice
			connectors wiki
		}
		grant {
			src user:alice
			role admin
			connectors wiki
		}
	}
}
%s {
	basic_auth {
%s	}
	mcpgate
}
`, storage, wiki.URL, site, basicAuthUsers(t, passwords))
}

// startGrantsCaddy runs grantsConfig on a Badger store of the test's own,
// and returns the config, to load again.
func startGrantsCaddy(t *testing.T, wiki *testupstream.Server) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	// Unload the config, closing the store, before its directory goes
	// (cleanups run last first).
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	storage := fmt.Sprintf("\t\tstorage badger %s\n\t\tseal_key %s", dir, base64.StdEncoding.EncodeToString(key))
	config := grantsConfig(t, wiki, storage)
	sitetest.NewTester(t, 0).InitServer(config, "caddyfile")
	return config
}

// bobsGrantBody is the body of POST /mcpgate/grants that grants bob
// wiki's echo, with reason.
func bobsGrantBody(reason string) string {
	return `{"src":["user:bob"],"tools":["wiki/echo"],"reason":"` + reason + `"}`
}

// grantsList returns GET /mcpgate/grants: every grant.
func grantsList(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, g := range mustAdmin(t, 200, "GET", "/mcpgate/grants", "")["grants"].([]any) {
		out = append(out, g.(map[string]any))
	}
	return out
}

// echoDecision returns the decision on wiki/echo for user, as GET
// /mcpgate/grants?user= gives it.
func echoDecision(t *testing.T, user string) map[string]any {
	t.Helper()
	out := mustAdmin(t, 200, "GET", "/mcpgate/grants?user="+user+"&tool=wiki/echo", "")
	for _, c := range out["connectors"].([]any) {
		for _, d := range c.(map[string]any)["tools"].([]any) {
			if d := d.(map[string]any); d["tool"] == "echo" {
				return d
			}
		}
	}
	t.Fatalf("no decision on wiki/echo for %s: %v", user, out)
	return nil
}

// sees reports whether agent c lists tool.
func sees(t *testing.T, c *client.Client, tool string) bool {
	t.Helper()
	return slices.Contains(agenttest.ToolNames(t, c), tool)
}

// TestAdminGrants runs runtime grants through the admin API of a real
// Caddy: a grant with a reason lets bob use a tool from his next request,
// in the session he had open; the list shows the config's grants and the
// runtime one; grants check names the grant that allowed; the audit log
// has the reason; a restart keeps the grant; its removal takes the tool
// away from the open session; and the errors say what is wrong.
func TestAdminGrants(t *testing.T) {
	wiki := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	config := startGrantsCaddy(t, wiki)
	bob := dial(t, "/mcp", "bob", agenttest.Eras[0].Opts...) // a legacy session, open before the grant
	if sees(t, bob, "wiki_echo") {
		t.Fatal("bob sees wiki_echo before any grant")
	}

	added := mustAdmin(t, 201, "POST", "/mcpgate/grants", bobsGrantBody("pairing with alice on the wiki"))
	id, _ := added["id"].(string)
	if !regexp.MustCompile(`^g-[a-z2-7]{13}$`).MatchString(id) || added["source"] != "runtime" ||
		added["reason"] != "pairing with alice on the wiki" || !strings.HasPrefix(fmt.Sprint(added["by"]), "127.0.0.1:") ||
		added["created"] == nil || added["warnings"] != nil {
		t.Fatalf("POST /mcpgate/grants = %v", added)
	}
	if !sees(t, bob, "wiki_echo") || sees(t, bob, "wiki_whoami") {
		t.Fatalf("with the grant, bob's open session lists %v", agenttest.ToolNames(t, bob))
	}
	mustWork(t, echo(t, "bob", "wiki"), "bob's call under the runtime grant")

	list := grantsList(t)
	if len(list) != 3 || list[0]["source"] != "config" || list[0]["index"] != 1.0 || list[1]["index"] != 2.0 || list[1]["role"] != "admin" ||
		list[2]["source"] != "runtime" || list[2]["id"] != id || list[2]["reason"] != "pairing with alice on the wiki" {
		t.Fatalf("GET /mcpgate/grants = %v", list)
	}
	if d := echoDecision(t, "bob"); d["allowed"] != true || d["source"] != "runtime" || d["grant_id"] != id || d["reason"] != "pairing with alice on the wiki" {
		t.Fatalf("bob's decision on wiki/echo = %v", d)
	}
	if d := echoDecision(t, "alice"); d["allowed"] != true || d["source"] != "config" || d["rule"] != 1.0 {
		t.Fatalf("alice's decision on wiki/echo = %v", d)
	}

	events := mustAdmin(t, 200, "GET", "/mcpgate/audit?kind=admin_change&user=bob", "")["events"].([]any)
	if len(events) != 1 || !strings.Contains(fmt.Sprint(events[0].(map[string]any)["detail"]),
		`added the runtime grant `+id+` (src user:bob; tools wiki/echo) because "pairing with alice on the wiki" (POST /mcpgate/grants from 127.0.0.1:`) {
		t.Fatalf("the audit log of bob's admin changes = %v", events)
	}

	// A grant naming no connector the gateway serves is kept, with a
	// warning; a restart keeps runtime grants.
	typo := mustAdmin(t, 201, "POST", "/mcpgate/grants", `{"src":["*"],"connectors":["wikki"],"reason":"a typo"}`)
	if w := anyStrings(typo["warnings"]); len(w) != 1 || !strings.Contains(w[0], `no connector matches "wikki"`) {
		t.Fatalf("a grant of an unknown connector: %v", typo)
	}
	if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true); err != nil {
		t.Fatal(err)
	}
	sitetest.NewTester(t, 0).InitServer(config, "caddyfile")
	if list := grantsList(t); len(list) != 4 || list[2]["id"] != id || list[3]["id"] != typo["id"] {
		t.Fatalf("after a restart the grants are %v", list)
	}
	bob = dial(t, "/mcp", "bob", agenttest.Eras[0].Opts...)
	if !sees(t, bob, "wiki_echo") {
		t.Fatal("after a restart bob lost wiki_echo")
	}

	removed := mustAdmin(t, 200, "DELETE", "/mcpgate/grants/"+id, "")
	if removed["removed"] != id {
		t.Fatalf("DELETE /mcpgate/grants/%s = %v", id, removed)
	}
	if sees(t, bob, "wiki_echo") {
		t.Fatal("after the removal bob's open session still lists wiki_echo")
	}
	if res, err := agenttest.Call(bob, "wiki_echo", map[string]any{"message": "hi"}); err == nil && !res.IsError {
		t.Fatal("bob could call wiki_echo after the grant was removed")
	}
	events = mustAdmin(t, 200, "GET", "/mcpgate/audit?kind=admin_change&user=bob", "")["events"].([]any)
	if len(events) != 2 || !strings.Contains(fmt.Sprint(events[0].(map[string]any)["detail"]), "removed the runtime grant "+id+` (src user:bob; tools wiki/echo), added because "pairing with alice on the wiki"`) {
		t.Fatalf("the audit log after the removal = %v", events)
	}
	mustAdmin(t, 200, "DELETE", "/mcpgate/grants/"+typo["id"].(string), "")
	if list := grantsList(t); len(list) != 2 {
		t.Fatalf("after removing both the grants are %v", list)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"no reason", "POST", "/mcpgate/grants", `{"src":["user:bob"],"tools":["wiki/echo"]}`, 400, "needs a reason"},
		{"a blank reason", "POST", "/mcpgate/grants", bobsGrantBody("  "), 400, "needs a reason"},
		{"a bad glob", "POST", "/mcpgate/grants", `{"src":["user:bob"],"tools":["wiki/a**"],"reason":"r"}`, 400, `tools: pattern "wiki/a**": ** must be a whole segment`},
		{"a bad source", "POST", "/mcpgate/grants", `{"src":["usr:bob"],"connectors":["wiki"],"reason":"r"}`, 400, `source "usr:bob"`},
		{"no scope", "POST", "/mcpgate/grants", `{"src":["user:bob"],"reason":"r"}`, 400, "names no connectors and no items"},
		{"an unknown field", "POST", "/mcpgate/grants", `{"src":["user:bob"],"connectors":["wiki"],"reason":"r","expires":"never"}`, 400, "expires"},
		{"an id in the body", "POST", "/mcpgate/grants", `{"src":["user:bob"],"connectors":["wiki"],"reason":"r","by":"someone else"}`, 400, "by"},
		{"an unknown id", "DELETE", "/mcpgate/grants/g-00000000", "", 404, `no grant "g-00000000"`},
		{"a config grant", "DELETE", "/mcpgate/grants/1", "", 409, "grant 1 is defined in the config, which the admin API cannot change: change it in the Caddyfile"},
		{"a check without a user", "GET", "/mcpgate/grants?groups=readers", "", 400, "?user="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := admin(t, tc.method, tc.path, tc.body)
			msg, _ := out["error"].(string)
			if status != tc.status || !strings.Contains(msg, tc.says) {
				t.Fatalf("%s %s: %d %q, want %d saying %q", tc.method, tc.path, status, msg, tc.status, tc.says)
			}
		})
	}
	if list := grantsList(t); len(list) != 2 {
		t.Fatalf("refused grants were kept: %v", list)
	}
}

// TestAdminGrantsPostgres checks runtime grants across instances on one
// PostgreSQL: a grant that another instance adds lets bob use the tool
// here within seconds, its removal there takes it away, and a grant added
// through this instance's admin API reaches the other.
func TestAdminGrantsPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("MCPGATE_TEST_PG_DSN", dsn)
	t.Setenv("MCPGATE_TEST_SEAL_KEY", base64.StdEncoding.EncodeToString(key))
	wiki := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true) })
	sitetest.NewTester(t, 0).InitServer(grantsConfig(t, wiki, "\t\tstorage postgres {\n\t\t\tdsn {env.MCPGATE_TEST_PG_DSN}\n\t\t}\n\t\tseal_key {env.MCPGATE_TEST_SEAL_KEY}"), "caddyfile")

	_, _, other := otherInstance(t, dsn, key)

	bob := dial(t, "/mcp", "bob", agenttest.Eras[0].Opts...)
	g, err := other.AddGrant(ctx, connectors.GrantRequest{
		Rule: grants.Rule{Sources: []string{"user:bob"}, Tools: []string{"wiki/echo"}}, Reason: "added on the other instance",
	})
	if err != nil {
		t.Fatal(err)
	}
	sitetest.Eventually(t, "bob's open session gets the other instance's grant", func() bool { return sees(t, bob, "wiki_echo") })
	if d := echoDecision(t, "bob"); d["grant_id"] != g.ID || d["reason"] != "added on the other instance" {
		t.Fatalf("bob's decision = %v", d)
	}
	if _, err := other.RemoveGrant(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	sitetest.Eventually(t, "bob's open session loses the tool the other instance took away", func() bool { return !sees(t, bob, "wiki_echo") })

	added := mustAdmin(t, 201, "POST", "/mcpgate/grants", bobsGrantBody("added here"))
	sitetest.Eventually(t, "the other instance has this one's grant", func() bool {
		got, ok := other.Snapshot().Grant(added["id"].(string))
		return ok && got.Reason == "added here"
	})
}

// TestAdminGrantsListChanged checks that agents with a notification
// stream open, in both eras, hear tools/list_changed when a runtime grant
// changes what they may use: added, then removed.
func TestAdminGrantsListChanged(t *testing.T) {
	wiki := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	startGrantsCaddy(t, wiki)
	bob := listeners(t, "bob")

	added := mustAdmin(t, 201, "POST", "/mcpgate/grants", bobsGrantBody("pairing"))
	told(t, "the grant", 1, bob...)
	for _, l := range bob {
		if !slices.Contains(l.tools(), "wiki_echo") {
			t.Errorf("bob's %s agent does not list wiki_echo after the grant", l.era)
		}
	}
	mustAdmin(t, 200, "DELETE", "/mcpgate/grants/"+added["id"].(string), "")
	told(t, "the removal", 2, bob...)
	for _, l := range bob {
		if slices.Contains(l.tools(), "wiki_echo") {
			t.Errorf("bob's %s agent lists wiki_echo after the removal", l.era)
		}
	}
}
