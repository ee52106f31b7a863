package mcpmux_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// reloadable serves the Mux cur holds on a test server, and builds Muxes
// of conns that share one Sessions and one Streams, as the gateway's
// generations do: a reload is a new Mux stored in cur.
type reloadable struct {
	cur   atomic.Pointer[mcpmux.Mux]
	URL   string
	build func(rules ...grants.Rule) *mcpmux.Mux
}

// newReloadable serves conns under rules.
func newReloadable(t *testing.T, conns []*connectors.Connector, rules ...grants.Rule) *reloadable {
	t.Helper()
	sessions, streams := mcpmux.NewSessions(), mcpmux.NewStreams()
	t.Cleanup(func() { streams.Close(); sessions.Close() })
	g := new(reloadable)
	g.build = func(rules ...grants.Rule) *mcpmux.Mux {
		policy, err := grants.New(rules)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mcpmux.New(mcpmux.Options{Connectors: conns, Policy: policy, Sessions: sessions, Streams: streams})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	g.cur.Store(g.build(rules...))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.cur.Load().ServeMCP(w, r, grants.Caller{ID: r.Header.Get("X-Test-User")}, "")
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// reads grants everyone the resources of a that pattern names.
func reads(pattern string) grants.Rule {
	return grants.Rule{Sources: []string{"*"}, Resources: []string{"a/" + pattern}}
}

// subscribedAgent opens a legacy session, its GET stream, and subscribes
// it to each of uris.
func subscribedAgent(t *testing.T, url string, uris ...string) (*rawClient, <-chan json.RawMessage) {
	t.Helper()
	c := dialRaw(t, url+"/mcp", agentHeader("alice", ""), v20251125)
	stream := openStream(t, c, nil)
	for _, uri := range uris {
		if r := c.call("resources/subscribe", map[string]any{"uri": uri}); r.result == nil {
			t.Fatalf("subscribe %s: %s", uri, r.body)
		}
	}
	return c, stream
}

// hears reports whether an update of uri at up reaches stream within d:
// the upstream updates it again and again, since the gateway may not
// have subscribed there yet.
func hears(t *testing.T, up *testupstream.Server, stream <-chan json.RawMessage, uri string, d time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		up.UpdateResource(uri)
		if nextUpdate(t, stream, 200*time.Millisecond) == uri {
			return true
		}
	}
	return false
}

// The resources of the reload tests: the agent subscribes to both, and
// the reload's grants take logo away.
const readme, logo = "test://a/readme", "test://a/logo.png"

// reloadCase is a gateway on upstream "a", of era, that lets everyone
// read its resources, and an agent subscribed there to readme and logo
// on a legacy session c, whose GET stream is stream.
type reloadCase struct {
	*reloadable
	era    testupstream.Era
	up     *testupstream.Server
	c      *rawClient
	stream <-chan json.RawMessage
}

// eachReload runs f, as a parallel subtest, with a reloadCase of each
// upstream era.
func eachReload(t *testing.T, f func(t *testing.T, rc *reloadCase)) {
	for _, era := range upstreamEras {
		t.Run(era.String(), func(t *testing.T) {
			t.Parallel()
			ups, conns := startUpstreams(t, era, "a")
			rc := &reloadCase{reloadable: newReloadable(t, conns, reads("**")), era: era, up: ups["a"]}
			rc.c, rc.stream = subscribedAgent(t, rc.URL, readme, logo)
			subscribed(t, rc.up, logo, 1)
			f(t, rc)
		})
	}
}

// TestSubscriptionsOutliveMux checks that a legacy session's resource
// subscriptions survive a reload, as the session and its stream do: once
// the Mux that made them closes, the one that replaces it holds them at
// its upstreams, judged by its own grants, and an unsubscribe through it
// ends them.
func TestSubscriptionsOutliveMux(t *testing.T) {
	t.Parallel()
	eachReload(t, func(t *testing.T, rc *reloadCase) {
		g, up, stream := rc.reloadable, rc.up, rc.stream
		old := g.cur.Swap(g.build(reads(readme)))
		_ = old.Close()
		g.cur.Load().Reloaded()
		if !hears(t, up, stream, readme, 5*time.Second) {
			t.Fatalf("the agent subscribed to %s before the reload hears no update of it after", readme)
		}
		up.UpdateResource(logo)
		if got := nextUpdate(t, stream, 300*time.Millisecond); got != "" {
			t.Errorf("after the reload that took %s away, the agent heard of %q", logo, got)
		}
		if r := rc.c.call("resources/unsubscribe", map[string]any{"uri": readme}); r.result == nil {
			t.Fatalf("unsubscribe %s: %s", readme, r.body)
		}
		if rc.era == testupstream.ModernOnly {
			// Its subscriptions/listen names what the gateway watches:
			// nothing now.
			subscribed(t, up, readme, 0)
			subscribed(t, up, logo, 0)
		}
		up.UpdateResource(readme)
		if got := nextUpdate(t, stream, 300*time.Millisecond); got != "" {
			t.Errorf("after unsubscribing, the agent heard of %q", got)
		}
	})
}

// TestSubscriptionsMoveOnReloaded checks that a Mux told it serves now
// (Reloaded) takes over the subscriptions of the one it replaces while
// that one still serves a request, such as the agent's GET stream: the
// new grants judge every update from then on.
func TestSubscriptionsMoveOnReloaded(t *testing.T) {
	t.Parallel()
	eachReload(t, func(t *testing.T, rc *reloadCase) {
		g, up, stream := rc.reloadable, rc.up, rc.stream
		old := g.cur.Swap(g.build(reads(readme)))
		g.cur.Load().Reloaded()
		// The move is in the background; its end is the old Mux's
		// upstream subscription to logo ending, which no one holds.
		subscribed(t, up, logo, 0)
		up.UpdateResource(logo)
		if got := nextUpdate(t, stream, 500*time.Millisecond); got != "" {
			t.Errorf("after the grants took %s away, the agent heard of %q", logo, got)
		}
		if !hears(t, up, stream, readme, 5*time.Second) {
			t.Fatalf("the agent hears no update of %s after the new Mux serves", readme)
		}
		_ = old.Close()
		if !hears(t, up, stream, readme, 5*time.Second) {
			t.Fatalf("the agent hears no update of %s once the old Mux closed", readme)
		}
	})
}
