package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// startGrantsGateway starts an instance with the connector "wiki" and a
// config grant of it to alice, its registry open on a store of its own.
func startGrantsGateway(t *testing.T) *instance {
	t.Helper()
	wiki := testupstream.StartT(t, testupstream.Options{Name: "wiki"})
	in := startInstance(t, connectors.Options{
		Config: []connectors.Config{{ID: "wiki", URL: wiki.URL}},
		Grants: []grants.Rule{{Sources: []string{"user:alice"}, Connectors: []string{"wiki"}}},
	})
	in.open(t, store.NewMemory())
	return in
}

// TestRuntimeGrantsApply checks that a runtime grant takes effect on the
// next request, in a session opened before it, in both eras; that its
// removal takes the tool away as fast, from lists and calls alike; and
// that the config's grant decides all along.
func TestRuntimeGrantsApply(t *testing.T) {
	for _, era := range agenttest.Eras {
		t.Run(era.Name, func(t *testing.T) {
			gg := startGrantsGateway(t)
			bob := gg.dial(t, "bob", era.Opts...)
			if names := agenttest.ToolNames(t, bob); len(names) != 0 {
				t.Fatalf("before any grant bob sees %v", names)
			}
			req := connectors.GrantRequest{Rule: grants.Rule{Sources: []string{"user:bob"}, Tools: []string{"wiki/echo"}}, Reason: "pairing with alice"}
			g, err := gg.reg.AddGrant(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if names := agenttest.ToolNames(t, bob); !slices.Contains(names, "wiki_echo") || slices.Contains(names, "wiki_whoami") {
				t.Fatalf("with the runtime grant of wiki/echo bob's open session sees %v", names)
			}
			if res, err := agenttest.Call(bob, "wiki_echo", map[string]any{"message": "hi"}); err != nil || res.IsError {
				t.Fatalf("bob's call under the runtime grant: %v, %+v", err, res)
			}
			if _, err := gg.reg.RemoveGrant(context.Background(), g.ID); err != nil {
				t.Fatal(err)
			}
			if names := agenttest.ToolNames(t, bob); slices.Contains(names, "wiki_echo") {
				t.Fatalf("after the removal bob's open session sees %v", names)
			}
			if res, err := agenttest.Call(bob, "wiki_echo", map[string]any{"message": "hi"}); err == nil && !res.IsError {
				t.Fatal("bob could still call wiki_echo after the grant was removed")
			}
			if names := agenttest.ToolNames(t, gg.dial(t, "alice", era.Opts...)); !slices.Contains(names, "wiki_echo") {
				t.Fatalf("alice, by the config's grant, sees %v", names)
			}
		})
	}
}

// TestExplainNamesGrant checks that a decision names the grant that made
// it: a config grant by its index, a runtime one by its id and reason.
func TestExplainNamesGrant(t *testing.T) {
	gg := startGrantsGateway(t)
	req := connectors.GrantRequest{Rule: grants.Rule{Sources: []string{"user:bob"}, Tools: []string{"wiki/echo"}}, Reason: "pairing with alice"}
	rg, err := gg.reg.AddGrant(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	g := gg.live.Current()
	decide := func(user string) Decision {
		t.Helper()
		access := g.Explain(g.Policy().For(grants.Caller{ID: user}), map[string][]string{"wiki": {"echo"}})
		if len(access) != 1 || len(access[0].Tools) != 1 {
			t.Fatalf("Explain for %s = %+v", user, access)
		}
		return access[0].Tools[0]
	}
	if d := decide("alice"); !d.Allowed || d.Source != "config" || d.Rule != 1 || d.GrantID != "" || d.Grant.Sources[0] != "user:alice" {
		t.Errorf("alice's decision = %+v", d)
	}
	if d := decide("bob"); !d.Allowed || d.Source != "runtime" || d.Rule != 0 || d.GrantID != rg.ID || d.Reason != "pairing with alice" || d.Grant.Tools[0] != "wiki/echo" {
		t.Errorf("bob's decision = %+v", d)
	}
	if d := decide("carol"); d.Allowed || d.Source != "" || d.Grant != nil {
		t.Errorf("carol's decision = %+v", d)
	}
}

// TestBuildSkipsBadRuntimeGrant checks that a stored runtime grant that
// no longer compiles grants nothing and stops nothing, and that the
// decisions name the grants kept by their own places; a bad config grant
// fails the build.
func TestBuildSkipsBadRuntimeGrant(t *testing.T) {
	bad := connectors.Grant{Rule: grants.Rule{Sources: []string{"user:eve"}, Tools: []string{"wiki/a**"}}, ID: "g-bad", Runtime: true}
	good := connectors.Grant{Rule: grants.Rule{Sources: []string{"user:bob"}, Connectors: []string{"wiki"}}, ID: "g-good", Runtime: true}
	o := &Options{Logger: zap.NewNop()}
	g, err := Build(o, &connectors.Snapshot{Grants: []connectors.Grant{bad, good}})
	if err != nil {
		t.Fatalf("a bad runtime grant failed the build: %v", err)
	}
	t.Cleanup(g.close)
	if gs := g.Grants(); len(gs) != 1 || gs[0].ID != "g-good" {
		t.Fatalf("the generation's grants = %+v", gs)
	}
	if d := g.decision("echo", connectors.Write, g.Policy().For(grants.Caller{ID: "bob"}).Decide(grants.Tools, "wiki", "echo", false)); d.GrantID != "g-good" {
		t.Errorf("bob's decision = %+v", d)
	}
	config := connectors.Grant{Rule: bad.Rule, Index: 1}
	if _, err := Build(o, &connectors.Snapshot{Grants: []connectors.Grant{config}}); err == nil || !strings.Contains(err.Error(), "grant 1: tools") {
		t.Fatalf("a bad config grant: %v", err)
	}
}
