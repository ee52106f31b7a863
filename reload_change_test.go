package mcpgate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// withNotesLine is config with line added to the block of connector
// notes that starts with after (its first line holding after).
func withNotesLine(t *testing.T, config, after, line string) string {
	t.Helper()
	start := strings.Index(config, "\t\tconnector notes {\n")
	at := strings.Index(config[start:], after)
	if start < 0 || at < 0 {
		t.Fatalf("the stack's config has no %q in connector notes", after)
	}
	at += start + len(after)
	return config[:at] + line + config[at:]
}

// TestReloadChangesConfigConnector checks, on a real Caddy against real
// authorization servers, that a reload that changes only a config
// connector's title keeps its tokens, and that one that changes what
// they are bound to (here the audience) disconnects every user's grant
// with the reason and revokes its tokens at the provider (RFC 7009) once
// the new config is live, audited as an admin change, while the other
// connectors' tokens stay: the new config refuses the old tokens, and a
// later consent would otherwise overwrite them unrevoked.
func TestReloadChangesConfigConnector(t *testing.T) {
	s := startOAuthStack(t)
	consent(t, "alice", "notes")
	consent(t, "bob", "notes")
	consent(t, "alice", "team")

	// A new title keeps the tokens: a call works with no new consent.
	titled := withNotesLine(t, s.config, "connector notes {\n", "\t\t\ttitle \"Team notes\"\n")
	s.tester.InitServer(titled, "caddyfile")
	time.Sleep(500 * time.Millisecond)
	if n := stats(t, s.notesAS).Revocations; n != 0 {
		t.Fatalf("a reload that changed only notes' title revoked %d tokens", n)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after a reload that changed notes' title")

	// A new audience makes them useless.
	s.tester.InitServer(withNotesLine(t, titled, "auth oauth {\n", "\t\t\t\taudience https://notes.example\n"), "caddyfile")
	// A refresh and an access token of each of the two grants.
	wait.Until(t, 15*time.Second, "4 revocations of notes' tokens at its authorization server", func() bool {
		return stats(t, s.notesAS).Revocations >= 4
	})
	const why = "the audience changed"
	wait.Until(t, 5*time.Second, "the audit log saying the config changed notes", func() bool {
		return anyContains(auditDetails(t, "admin_change", "notes"), "the config changed the connector: "+why+"; grants disconnected: 2, revoked at the provider: 2")
	})
	for _, user := range []string{"alice", "bob"} {
		if st := statusOf(t, user, "notes"); st["status"] != "needs_auth" || st["disconnect_reason"] != "an admin changed the connector: "+why+"; connect again" {
			t.Errorf("%s's notes after its audience changed: %v", user, st)
		}
	}
	if d := auditDetails(t, "disconnect", "notes"); !anyContains(d, why) {
		t.Errorf("the audit log's disconnects of notes: %q", d)
	}
	mustNeedConsent(t, echo(t, "alice", "notes"), "notes", "alice after notes' audience changed")
	if n := stats(t, s.teamAS).Revocations; n != 0 {
		t.Errorf("changing notes revoked %d tokens of team", n)
	}
	mustWork(t, echo(t, "bob", "team"), "team after notes changed")
}
