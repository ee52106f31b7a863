package mcpgate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// neverUsed fails unless connector has no last use, within a few seconds:
// what a removal leaves behind goes in the background.
func neverUsed(t *testing.T, connector, what string) {
	t.Helper()
	wait.Until(t, 10*time.Second, what+": no last use", func() bool {
		return details(t, connector, nil)["last_used"] == nil
	})
}

// TestRemovalForgetsLastUse checks, on a real Caddy, that a connector
// removed leaves no last use for one added later under its id: a runtime
// connector removed by the admin API, a config connector that a reload
// removes, and one removed while the gateway was down, purged at the
// start. Each had been used, and its use stored.
func TestRemovalForgetsLastUse(t *testing.T) {
	s := startOAuthStack(t)
	plain := testupstream.StartT(t, testupstream.Options{Name: "plain"})
	plainBlock := "\t\tconnector plain {\n\t\t\turl " + plain.URL + "\n\t\t}\n"
	config := strings.Replace(s.config, "\t\tgrant {\n", plainBlock+"\t\tgrant {\n", 1)
	config = strings.Replace(config, "connectors notes team\n", "connectors notes team plain extra\n", 1)
	s.tester.InitServer(config, "caddyfile")
	runtime := `{"id":"%s","url":"` + plain.URL + `"}`
	before := time.Now().Add(-time.Second)

	// A runtime connector, removed by the admin API and added again.
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", strings.Replace(runtime, "%s", "extra", 1))
	mustWork(t, echo(t, "alice", "extra"), "alice's call of extra")
	lastUsed(t, details(t, "extra", nil), before)
	mustAdmin(t, 200, "DELETE", "/mcpgate/connectors/extra", "")
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", strings.Replace(runtime, "%s", "extra", 1))
	if d := details(t, "extra", nil); d["last_used"] != nil {
		t.Errorf("extra, removed and added again, was last used at %v", d["last_used"])
	}

	// A config connector that a reload removes: the old config's last
	// flush, when it stops, must not store its uses again.
	mustWork(t, echo(t, "alice", "plain"), "alice's call of plain")
	lastUsed(t, details(t, "plain", nil), before)
	config = strings.Replace(config, plainBlock, "", 1)
	s.tester.InitServer(config, "caddyfile")
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", strings.Replace(runtime, "%s", "plain", 1))
	neverUsed(t, "plain", "plain, removed from the config and added at run time")

	// A config connector removed while the gateway was down: an orphan,
	// purged when the gateway starts without it.
	consent(t, "alice", "notes")
	mustWork(t, echo(t, "alice", "notes"), "alice's call of notes")
	lastUsed(t, details(t, "notes", nil), before)
	if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true); err != nil {
		t.Fatal(err)
	}
	s.tester.InitServer(withoutNotes(t, config), "caddyfile")
	wait.Until(t, 10*time.Second, "the audit log saying notes was removed from the config", func() bool {
		return anyContains(auditDetails(t, "admin_change", "notes"), "removed from the config")
	})
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", strings.Replace(runtime, "%s", "notes", 1))
	neverUsed(t, "notes", "notes, purged at the start and added at run time")
}
