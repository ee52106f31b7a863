package mcpgate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/postgres"
)

// TestPostgresStorage runs the gateway on a private PostgreSQL, beside a
// registry of its own on the same database that stands for a second
// instance: each applies the other's runtime connectors within seconds,
// through PostgreSQL's notices, and agents get sealed session ids.
func TestPostgresStorage(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	key := bytes.Repeat([]byte{7}, 32)
	t.Setenv("MCPGATE_TEST_PG_DSN", dsn)
	t.Setenv("MCPGATE_TEST_SEAL_KEY", base64.StdEncoding.EncodeToString(key))
	wiki := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	notes := testupstream.StartT(t, testupstream.Options{Name: "notes"})
	tester := sitetest.NewTester(t, 0)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
		storage postgres {
			dsn {env.MCPGATE_TEST_PG_DSN}
		}
		seal_key {env.MCPGATE_TEST_SEAL_KEY}
		grant {
			src *
			connectors wiki notes
		}
	}
}
%s {
	basic_auth {
%s	}
	mcpgate
}
`, site, basicAuthUsers(t, passwords)), "caddyfile")

	db, ring, other := otherInstance(t, dsn, key)

	// A connector the other instance adds reaches this one's agents.
	if _, err := other.Add(ctx, connectors.AddRequest{Config: connectors.Config{ID: "wiki", URL: wiki.URL}, MatchPreset: new(bool)}); err != nil {
		t.Fatal(err)
	}
	sitetest.Eventually(t, "the gateway serves the other instance's connector", func() bool {
		return slices.Contains(toolNames(t, site, "alice"), "wiki_echo")
	})
	// And one added here reaches the other instance.
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"notes","url":"`+notes.URL+`","match_preset":false}`)
	sitetest.Eventually(t, "the other instance has the gateway's connector", func() bool {
		_, ok := other.Snapshot().Entry("notes")
		return ok
	})

	// The admin change is in the audit log, which both instances share:
	// the other one finds it there, and this one finds the other's.
	checkSharedAudit(t, db)

	// An upstream's list change that the other instance heard of makes
	// this one fetch the lists again.
	// (The last change built a new generation, whose cache is empty:
	// list once to fill it.)
	if !slices.Contains(toolNames(t, site, "alice"), "wiki_echo") {
		t.Fatal("wiki's tools are gone")
	}
	before := len(toolListsAt(wiki))
	(&gateway.ListNews{Store: store.Seal(db, ring), Instance: "other", Logger: zap.NewNop()}).Tell("wiki", "notifications/tools/list_changed")
	sitetest.Eventually(t, "the gateway fetches wiki's tools again on the other's news", func() bool {
		return len(toolListsAt(wiki)) > before
	})

	// Agents' sessions have sealed ids, which any instance can serve.
	c := dial(t, "/mcp", "alice", agenttest.Eras[0].Opts...)
	if id := c.GetSessionId(); !strings.HasPrefix(id, "mcpgate-s1.") {
		t.Errorf("session id %q is not a sealed one", id)
	}
}

// otherInstance opens what another instance on the PostgreSQL at dsn,
// with seal key key, holds: the database, its key ring, and a registry
// on them, all closed when the test ends.
func otherInstance(t *testing.T, dsn string, key []byte) (*postgres.Store, *store.Ring, *connectors.Registry) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ring, err := store.NewRing([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	other, err := connectors.NewRegistry(connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Open(ctx, store.Seal(db, ring)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	return db, ring, other
}

// checkSharedAudit checks that GET /mcpgate/audit has the admin change
// that added notes, that an instance on db's audit table (standing for
// another instance) finds it, and that the other's own admin change is in
// GET /mcpgate/audit.
func checkSharedAudit(t *testing.T, db *postgres.Store) {
	t.Helper()
	admin := func(path string) []string {
		var out []string
		for _, e := range mustAdmin(t, 200, "GET", path, "")["events"].([]any) {
			out = append(out, fmt.Sprint(e.(map[string]any)["detail"]))
		}
		return out
	}
	added := func(details []string) bool {
		return slices.ContainsFunc(details, func(d string) bool { return strings.HasPrefix(d, "added the runtime connector") })
	}
	if got := admin("/mcpgate/audit?kind=admin_change&connector=notes"); !added(got) {
		t.Errorf("GET /mcpgate/audit lacks the change that added notes: %q", got)
	}
	log, err := audit.New(audit.Options{Table: db.Audit()})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	events, err := log.Query(context.Background(), audit.Filter{Kind: audit.KindAdminChange, Connector: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	var theirs []string
	for _, e := range events {
		theirs = append(theirs, e.Detail)
	}
	if !added(theirs) {
		t.Errorf("the other instance's audit log lacks the change that added notes: %q", theirs)
	}
	log.Record(audit.Event{Kind: audit.KindAdminChange, Connector: "wiki", Outcome: audit.OutcomeOK, Detail: "changed on the other instance"})
	if err := log.Close(); err != nil { // writes the event
		t.Fatal(err)
	}
	if got := admin("/mcpgate/audit?kind=admin_change&connector=wiki"); !slices.Contains(got, "changed on the other instance") {
		t.Errorf("GET /mcpgate/audit lacks the other instance's admin change: %q", got)
	}
}

// toolListsAt lists the tools/list requests an upstream received.
func toolListsAt(up *testupstream.Server) []testupstream.Request {
	var out []testupstream.Request
	for _, r := range up.Requests() {
		if strings.Contains(string(r.Body), `"tools/list"`) {
			out = append(out, r)
		}
	}
	return out
}
