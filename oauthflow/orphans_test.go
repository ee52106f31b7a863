package oauthflow

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// ofKind returns the events of kind among evs.
func ofKind(evs []Event, kind EventKind) []Event {
	var out []Event
	for _, ev := range evs {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestPurgeOrphans checks that the grants and clients of a connector that
// nothing serves any more are revoked at the authorization server
// through the registered client they recorded, then deleted, with a
// disconnect and a revocation event each saying so; with a grace period,
// only once the connector has been an orphan for that long, a connector
// served again in between starting over.
func TestPurgeOrphans(t *testing.T) {
	var opts *Options
	ev := new(events)
	h := newHarness(t, func(_ *harness, o *Options, _ *[]Config) {
		o.OnEvent = ev.add
		opts = o
	})
	h.connect(h.as, "notion", "alice")
	h.connect(h.as, "notion", "bob")
	ctx := context.Background()
	served := true
	isServed := func(id string) bool { return served && id == "notion" }
	if ids, err := Orphans(ctx, h.st, isServed); err != nil || len(ids) != 0 {
		t.Fatalf("Orphans while notion is served = %v, %v", ids, err)
	}
	served = false
	if ids, err := Orphans(ctx, h.st, isServed); err != nil || !slices.Equal(ids, []string{"notion"}) {
		t.Fatalf("Orphans once notion is not = %v, %v", ids, err)
	}

	po := PurgeOptions{Grace: time.Hour, HTTP: h.as.srv.Client()}
	purge := func() []Purged {
		t.Helper()
		out, err := PurgeOrphans(ctx, *opts, isServed, po)
		if err != nil {
			t.Fatalf("PurgeOrphans: %v", err)
		}
		return out
	}
	if out := purge(); len(out) != 0 {
		t.Fatalf("an orphan seen first was purged: %+v", out)
	}
	h.clock.Add(50 * time.Minute)
	served = true
	purge() // served again: its mark goes
	served = false
	if out := purge(); len(out) != 0 {
		t.Fatalf("an orphan purged within its grace, which a served spell restarted: %+v", out)
	}
	h.clock.Add(30 * time.Minute)
	if out := purge(); len(out) != 0 || len(h.as.revokeRequests()) != 0 {
		t.Fatalf("an orphan purged 30 minutes into a grace of an hour: %+v", out)
	}
	h.clock.Add(31 * time.Minute)
	out := purge()
	if len(out) != 1 || out[0].Connector != "notion" || len(out[0].Revocations) != 2 ||
		!out[0].Revocations[0].Revoked || !out[0].Revocations[1].Revoked {
		t.Fatalf("purged = %+v", out)
	}
	if n := len(h.as.revokeRequests()); n != 4 { // a refresh and an access token each
		t.Errorf("the server saw %d revocations, want 4", n)
	}
	for _, prefix := range []string{prefixGrants, prefixClients, prefixOrphans} {
		if keys, _ := h.st.List(ctx, prefix); len(keys) != 0 {
			t.Errorf("records left under %s: %v", prefix, keys)
		}
	}
	evs := ev.take()
	if d := ofKind(evs, EventDisconnect); len(d) != 2 || d[0].Detail != "removed from the config" || d[0].Connector != "notion" {
		t.Errorf("disconnect eventLog = %+v", d)
	}
	if r := ofKind(evs, EventRevocation); len(r) != 2 || r[0].Outcome != OutcomeRevoked {
		t.Errorf("revocation eventLog = %+v", r)
	}
}

// TestPurgeOrphanStatic checks that the tokens of an orphan whose static
// client's secret went with its config are deleted unrevoked, the
// revocation saying why, at once without a grace period.
func TestPurgeOrphanStatic(t *testing.T) {
	var opts *Options
	ev := new(events)
	h := newHarness(t, func(h *harness, o *Options, cfgs *[]Config) {
		o.OnEvent, opts = ev.add, o
		h.as.clients["static-client"] = "static-secret"
		cfg := h.as.config("notion")
		cfg.Discover, cfg.Consent = nil, Shared
		cfg.ClientID, cfg.ClientSecret = "static-client", "static-secret"
		cfg.Issuer, cfg.AuthorizationEndpoint = h.as.Issuer, h.as.Issuer+"/authorize"
		cfg.TokenEndpoint, cfg.RevocationEndpoint = h.as.Issuer+"/token", h.as.Issuer+"/revoke"
		(*cfgs)[0] = cfg
	})
	h.connect(h.as, "notion", "")
	ctx := context.Background()
	out, err := PurgeOrphans(ctx, *opts, func(string) bool { return false }, PurgeOptions{HTTP: h.as.srv.Client()})
	if err != nil || len(out) != 1 || len(out[0].Revocations) != 1 {
		t.Fatalf("PurgeOrphans = %+v, %v", out, err)
	}
	if rev := out[0].Revocations[0]; rev.Attempted || rev.Revoked || !strings.Contains(rev.Detail, "client") {
		t.Errorf("the static client's revocation = %+v, want none, saying the client is gone", rev)
	}
	if n := len(h.as.revokeRequests()); n != 0 {
		t.Errorf("the server saw %d revocations of a client nothing can authenticate as", n)
	}
	if keys, _ := h.st.List(ctx, prefixGrants); len(keys) != 0 {
		t.Errorf("grants left: %v", keys)
	}
	if r := ofKind(ev.take(), EventRevocation); len(r) != 1 || r[0].Outcome != OutcomeNone {
		t.Errorf("revocation eventLog = %+v, want one saying nothing was revoked", r)
	}
}
