package mcpmux_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// perUserConsent is a credential source under which only the users in
// consented reach an upstream, as under per-user OAuth consent.
func perUserConsent(consented *sync.Map) mcpmux.Credentials {
	return func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
		if _, ok := consented.Load(req.Caller.ID); !ok {
			return mcpmux.Credential{}, &mcpmux.ConsentRequired{Connector: req.Connector.ID, Status: mcpmux.StatusNeedsAuth,
				URL: connectURL, Message: "Connector " + req.Connector.ID + " needs your consent."}
		}
		return mcpmux.StaticCredentials(ctx, req)
	}
}

// only selects one caller, for AccessChanged.
func only(user string) func(string) bool { return func(id string) bool { return id == user } }

// settle waits for late notifications, so that counting them is exact.
func settle() { time.Sleep(400 * time.Millisecond) }

// TestAccessChanged checks that a consent given or withdrawn reaches the
// listening agents whose view it changes, in both eras, once however often
// it is announced in a burst: the user's agent hears tools/list_changed
// and then lists the connector's tools, or no longer does; another user's
// agent, and one whose grants show it nothing of the connector, hear
// nothing.
func TestAccessChanged(t *testing.T) {
	t.Parallel()
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			_, conns := startUpstreams(t, testupstream.BothEras, "a")
			var consented sync.Map
			consented.Store("bob", true)
			g := startGateway(t, conns, []grants.Rule{
				{Sources: []string{"user:alice", "user:bob"}, Connectors: []string{"a"}},
				{Sources: []string{"user:carol"}, Connectors: []string{"elsewhere"}},
			}, func(o *mcpmux.Options) { o.Credentials = perUserConsent(&consented) })
			agents := map[string]*agenttest.Notes{"alice": {}, "bob": {}, "carol": {}}
			clients := map[string]func() []string{}
			for user, n := range agents {
				c := listeningAgent(t, g, user, era == "modern", n.On)
				clients[user] = func() []string { return toolNames(t, c) }
			}
			if slices.Contains(clients["alice"](), "a_echo") {
				t.Fatal("alice lists a_echo before her consent")
			}

			consented.Store("alice", true)
			for range 3 { // one consent, announced three times at once
				g.mux.AccessChanged("a", only("alice"))
			}
			eventually(t, 3*time.Second, "alice told of her consent", func() bool { return agents["alice"].Tools() > 0 })
			settle()
			if n := agents["alice"].Tools(); n != 1 {
				t.Errorf("alice heard of one consent %d times", n)
			}
			if !slices.Contains(clients["alice"](), "a_echo") {
				t.Error("alice does not list a_echo after her consent")
			}

			consented.Delete("alice")
			g.mux.AccessChanged("a", only("alice"))
			eventually(t, 3*time.Second, "alice told of her disconnect", func() bool { return agents["alice"].Tools() > 1 })
			if slices.Contains(clients["alice"](), "a_echo") {
				t.Error("alice lists a_echo after her disconnect")
			}

			// A shared consent concerns every caller, who sees the connector.
			g.mux.AccessChanged("a", func(string) bool { return true })
			eventually(t, 3*time.Second, "bob told of a shared consent", func() bool { return agents["bob"].Tools() > 0 })
			g.mux.AccessChanged("nosuch", func(string) bool { return true })
			settle()
			if n := agents["bob"].Tools(); n != 1 {
				t.Errorf("bob heard of alice's consents, or of an unknown connector: %d notices", n)
			}
			if n := agents["carol"].Tools(); n != 0 {
				t.Errorf("carol, who sees nothing of a, was told %d times", n)
			}
		})
	}
}

// TestStreamsOutliveMux checks that an agent's notification stream,
// opened on one Mux, stays open when another Mux sharing its Sessions and
// Streams replaces it (a reload) and the first closes, and that it hears
// the replacement's Reloaded once: after which its next list is judged by
// the new grants. It hears each later change too.
func TestStreamsOutliveMux(t *testing.T) {
	t.Parallel()
	for _, era := range []string{"legacy", "modern"} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			_, conns := startUpstreams(t, testupstream.BothEras, "a")
			uses := func(tools string) grants.Rule {
				return grants.Rule{Sources: []string{"*"}, Tools: []string{tools}, Prompts: []string{"a/**"}}
			}
			g := newReloadable(t, conns, uses("a/**"))
			cur := &g.cur
			n := new(agenttest.Notes)
			c := listeningAgent(t, &gateway{URL: g.URL}, "alice", era == "modern", n.On)
			if !slices.Contains(toolNames(t, c), "a_delete_everything") {
				t.Fatal("a_delete_everything is not listed under the first grants")
			}

			old := cur.Swap(g.build(uses("a/echo")))
			_ = old.Close()
			cur.Load().Reloaded()
			eventually(t, 3*time.Second, "the agent told of the reload", func() bool { return n.Tools() > 0 })
			settle()
			if got := n.Tools(); got != 1 {
				t.Errorf("one reload made %d notices", got)
			}
			if names := toolNames(t, c); slices.Contains(names, "a_delete_everything") || !slices.Contains(names, "a_echo") {
				t.Errorf("after the reload the agent lists %v, want a_echo and not a_delete_everything", names)
			}
			cur.Load().Reloaded()
			eventually(t, 3*time.Second, "the stream, still open, told of a second change", func() bool { return n.Tools() > 1 })
		})
	}
}

// TestStreamsClose checks that closing a shared Streams ends the streams
// that a Mux, still open, serves.
func TestStreamsClose(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	streams := mcpmux.NewStreams()
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) { o.Streams = streams })
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	get, _ := http.NewRequest(http.MethodGet, g.URL+"/mcp", nil)
	get.Header = agentHeader("alice", "")
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set(mcp.HeaderSessionID, c.session)
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				return
			}
		}
	}()
	streams.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its Streams")
	}
}
