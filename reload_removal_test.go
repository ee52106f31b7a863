package mcpgate_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// withoutNotes is config without the connector notes and its grant.
func withoutNotes(t *testing.T, config string) string {
	t.Helper()
	start := strings.Index(config, "\t\tconnector notes {\n")
	end := strings.Index(config, "\t\tconnector team {\n")
	if start < 0 || end < start {
		t.Fatal("the stack's config has no connector notes before team")
	}
	out := config[:start] + config[end:]
	return strings.Replace(out, "connectors notes team\n", "connectors team\n", 1)
}

// auditDetails returns the details of the audit events of kind at
// connector.
func auditDetails(t *testing.T, kind, connector string) []string {
	t.Helper()
	out := mustAdmin(t, http.StatusOK, "GET", "/mcpgate/audit?kind="+kind+"&connector="+connector, "")
	var details []string
	events, _ := out["events"].([]any)
	for _, e := range events {
		details = append(details, fmt.Sprint(e.(map[string]any)["detail"]))
	}
	return details
}

// anyContains reports whether one of all contains sub.
func anyContains(all []string, sub string) bool {
	for _, s := range all {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestReloadRemovesConfigConnector checks, on a real Caddy against real
// authorization servers, that a reload that keeps a config connector
// keeps its tokens, and that one that removes it revokes them at the
// provider (RFC 7009) and purges its grants and client once the new
// config is live, audited as removed from the config, while the other
// connectors' tokens stay. Given back by a later reload, the connector
// starts afresh: no grant, and a new client registration at the consent.
func TestReloadRemovesConfigConnector(t *testing.T) {
	s := startOAuthStack(t)
	consent(t, "alice", "notes")
	consent(t, "bob", "notes")
	consent(t, "alice", "team")

	// A reload that keeps notes keeps its tokens.
	kept := strings.Replace(s.config, "grace_period 1ns", "grace_period 2ns", 1)
	s.tester.InitServer(kept, "caddyfile")
	time.Sleep(500 * time.Millisecond)
	if n := stats(t, s.notesAS).Revocations; n != 0 {
		t.Fatalf("a reload that kept notes revoked %d tokens", n)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after a reload that kept notes")

	// A reload that removes it.
	s.tester.InitServer(withoutNotes(t, kept), "caddyfile")
	// A refresh and an access token of each of the two grants.
	wait.Until(t, 15*time.Second, "4 revocations of notes' tokens at its authorization server", func() bool {
		return stats(t, s.notesAS).Revocations >= 4
	})
	wait.Until(t, 5*time.Second, "the audit log saying notes was removed from the config", func() bool {
		return anyContains(auditDetails(t, "admin_change", "notes"), "removed from the config; grants purged: 2, revoked at the provider: 2")
	})
	if d := auditDetails(t, "disconnect", "notes"); !anyContains(d, "removed from the config") {
		t.Errorf("the audit log's disconnects of notes: %q", d)
	}
	if n := stats(t, s.teamAS).Revocations; n != 0 {
		t.Errorf("removing notes revoked %d tokens of team", n)
	}
	mustWork(t, echo(t, "bob", "team"), "team after notes was removed")

	// Given back, notes holds nothing of before: no grant (a disconnected
	// one would say why), and no client, so consent registers anew.
	s.tester.InitServer(s.config, "caddyfile")
	if st := statusOf(t, "alice", "notes"); st["status"] != "needs_auth" || st["disconnect_reason"] != nil {
		t.Errorf("alice's notes given back: %v", st)
	}
	mustNeedConsent(t, echo(t, "alice", "notes"), "notes", "alice with notes given back")
	consent(t, "alice", "notes")
	if st := stats(t, s.notesAS); st.Registrations != 2 {
		t.Errorf("the consent after notes came back made %d registrations in all, want 2", st.Registrations)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after consenting again")
}

// TestRestartPurgesOrphan checks that a config connector removed while
// no config ran is purged when the gateway starts without it: its grants
// go, audited, though its tokens cannot be revoked here (the loopback
// authorization server was trusted by the config that is gone, and the
// gateway refuses loopback addresses for any other), and a connector the
// new config keeps keeps its tokens.
func TestRestartPurgesOrphan(t *testing.T) {
	s := startOAuthStack(t)
	consent(t, "alice", "notes")
	consent(t, "alice", "team")
	if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true); err != nil {
		t.Fatal(err)
	}
	s.tester.InitServer(withoutNotes(t, s.config), "caddyfile")
	wait.Until(t, 10*time.Second, "the audit log saying notes was removed from the config", func() bool {
		return anyContains(auditDetails(t, "admin_change", "notes"), "removed from the config; grants purged: 1, revoked at the provider: 0")
	})
	if d := auditDetails(t, "revocation", "notes"); len(d) == 0 {
		t.Error("the audit log does not say why notes' tokens were not revoked")
	}
	mustWork(t, echo(t, "alice", "team"), "team after the restart")
	s.tester.InitServer(s.config, "caddyfile")
	if st := statusOf(t, "alice", "notes"); st["status"] != "needs_auth" || st["disconnect_reason"] != nil {
		t.Errorf("alice's notes given back: %v", st)
	}
}
