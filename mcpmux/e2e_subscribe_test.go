package mcpmux_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// updatedMethod is the notification of a changed resource.
const updatedMethod = "notifications/resources/updated"

// openStream opens the GET stream of a legacy raw client's session, with
// extra headers, and returns the messages it carries. The gateway holds
// the stream once it has answered, which openStream waits for. The stream
// closes with the test.
func openStream(t *testing.T, c *rawClient, extra http.Header) <-chan json.RawMessage {
	t.Helper()
	h := http.Header{"Accept": {"text/event-stream"}}
	for k, v := range extra {
		h[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req := c.newRequest(http.MethodGet, nil, 0, h).WithContext(ctx)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	out := make(chan json.RawMessage, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out <- json.RawMessage(data)
			}
		}
	}()
	return out
}

// nextUpdate returns the URI of the next resource update on a stream,
// skipping other notifications, or "" when none comes within d.
func nextUpdate(t *testing.T, stream <-chan json.RawMessage, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case msg, ok := <-stream:
			if !ok {
				return ""
			}
			var n struct {
				Method string `json:"method"`
				Params struct {
					URI string `json:"uri"`
				} `json:"params"`
			}
			decodeInto(t, msg, &n)
			if n.Method == updatedMethod {
				return n.Params.URI
			}
		case <-deadline:
			return ""
		}
	}
}

// subscribed waits until up holds n subscriptions to uri: a 2026-07-28
// upstream gets them when the gateway's subscriptions/listen reopens.
func subscribed(t *testing.T, up *testupstream.Server, uri string, n int) {
	t.Helper()
	eventually(t, 3*time.Second, fmt.Sprintf("%d upstream subscriptions to %s", n, uri), func() bool {
		return up.Subscribed(uri) == n
	})
}

// eachSingleEra runs f, as a subtest, with an upstream "a" of each era
// alone and its connector.
func eachSingleEra(t *testing.T, f func(t *testing.T, era testupstream.Era, up *testupstream.Server, conns []*connectors.Connector)) {
	for _, era := range []testupstream.Era{testupstream.LegacyOnly, testupstream.ModernOnly} {
		t.Run(era.String(), func(t *testing.T) {
			ups, conns := startUpstreams(t, era, "a")
			f(t, era, ups["a"], conns)
		})
	}
}

// TestSubscribeUpdates checks that a legacy agent's resources/subscribe
// reaches the upstream that serves the URI, through the aggregated and
// the connector's own endpoint, and that the upstream's update reaches the
// agent's GET stream named as the agent named it, the mcpgate://<id>/ form
// of a URI two connectors offer included, and only from that connector.
func TestSubscribeUpdates(t *testing.T) {
	t.Parallel()
	shared := testupstream.SharedResourceURI
	for _, upEra := range upstreamEras {
		t.Run(upEra.String(), func(t *testing.T) {
			ups, conns := startUpstreams(t, upEra, "a", "b")
			g := startGateway(t, conns, everyone)
			for _, tc := range []struct{ path, uri, upURI string }{
				{"/mcp", "test://a/readme", "test://a/readme"},
				{"/connectors/a/mcp", "test://a/readme", "test://a/readme"},
				{"/mcp", "test://a/items/7", "test://a/items/7"},
				{"/mcp", "mcpgate://a/" + shared, shared},
			} {
				c := dialRaw(t, g.URL+tc.path, agentHeader("alice", ""), v20251125)
				stream := openStream(t, c, nil)
				if r := c.call("resources/subscribe", map[string]any{"uri": tc.uri}); r.result == nil {
					t.Fatalf("subscribe %s at %s: %s", tc.uri, tc.path, r.body)
				}
				subscribed(t, ups["a"], tc.upURI, 1)
				if ups["b"].Subscribed(tc.upURI) != 0 {
					t.Errorf("subscribing to %s at a subscribed at b", tc.uri)
				}
				ups["b"].UpdateResource(tc.upURI)
				if got := nextUpdate(t, stream, 300*time.Millisecond); got != "" {
					t.Errorf("b's update of %s reached the agent subscribed at a as %q", tc.upURI, got)
				}
				ups["a"].UpdateResource(tc.upURI)
				if got := nextUpdate(t, stream, 3*time.Second); got != tc.uri {
					t.Errorf("update at %s: got %q, want %q", tc.path, got, tc.uri)
				}
				if r := c.call("resources/unsubscribe", map[string]any{"uri": tc.uri}); r.result == nil {
					t.Fatalf("unsubscribe %s: %s", tc.uri, r.body)
				}
				subscribed(t, ups["a"], tc.upURI, 0)
			}
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
			if r := c.call("resources/subscribe", map[string]any{"uri": shared}); r.code() != -32602 || !strings.Contains(r.err.Message, "ambiguous") {
				t.Errorf("subscribe to the ambiguous %s: %s", shared, r.body)
			}
		})
	}
}

// TestSubscribeCapability checks that legacy agents are offered resource
// subscriptions and 2026-07-28 agents are not, where resources/subscribe
// and resources/unsubscribe are no methods: 404 with -32601.
func TestSubscribeCapability(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	g := startGateway(t, conns, everyone)
	c := newRaw(t, g.URL+"/mcp", agentHeader("alice", ""))
	r := c.call("initialize", map[string]any{"protocolVersion": v20251125, "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "raw", "version": "1"}})
	var init struct {
		Capabilities struct {
			Resources map[string]bool `json:"resources"`
		} `json:"capabilities"`
	}
	decodeInto(t, r.result, &init)
	if !init.Capabilities.Resources["subscribe"] || !init.Capabilities.Resources["listChanged"] {
		t.Errorf("legacy resources capability = %v", init.Capabilities.Resources)
	}
	m := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20260728)
	var disc struct {
		Capabilities struct {
			Resources map[string]bool `json:"resources"`
		} `json:"capabilities"`
	}
	decodeInto(t, m.result("server/discover", nil), &disc)
	if _, ok := disc.Capabilities.Resources["subscribe"]; ok {
		t.Errorf("2026-07-28 resources capability = %v", disc.Capabilities.Resources)
	}
	for _, method := range []string{"resources/subscribe", "resources/unsubscribe"} {
		if r := m.call(method, map[string]any{"uri": "test://a/readme"}); r.status != http.StatusNotFound || r.code() != -32601 {
			t.Errorf("2026-07-28 %s: %d %s", method, r.status, r.body)
		}
	}
}

// TestSubscribeRefused checks that a URI the caller may not read is
// refused as a read of it is, without asking the upstream, and that an
// update reaches only the sessions subscribed to it: not another user's,
// not another session of the same user's.
func TestSubscribeRefused(t *testing.T) {
	t.Parallel()
	eachSingleEra(t, func(t *testing.T, _ testupstream.Era, up *testupstream.Server, conns []*connectors.Connector) {
		g := startGateway(t, conns, []grants.Rule{
			{Sources: []string{"user:alice"}, Resources: []string{"a/test://a/readme"}},
			{Sources: []string{"user:bob"}, Resources: []string{"a/test://a/readme", "a/test://a/logo.png"}},
		})
		alice := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
		for _, uri := range []string{"test://a/logo.png", "test://a/nothing", "mcpgate://a/test://a/logo.png", "test://a/items/1"} {
			read := alice.call("resources/read", map[string]any{"uri": uri})
			sub := alice.call("resources/subscribe", map[string]any{"uri": uri})
			if !notGranted(sub) || string(sub.errRaw) != string(read.errRaw) {
				t.Errorf("subscribe %s: %s; read: %s", uri, sub.body, read.body)
			}
		}
		if n := countMethod(up, "resources/subscribe"); n != 0 {
			t.Errorf("refused subscriptions sent %d resources/subscribe upstream", n)
		}
		if n := up.Subscribed("test://a/logo.png"); n != 0 {
			t.Errorf("the upstream holds %d subscriptions to the ungranted logo", n)
		}

		aliceStream := openStream(t, alice, nil)
		aliceOther := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
		otherStream := openStream(t, aliceOther, nil)
		bob := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
		bobStream := openStream(t, bob, nil)
		alice.result("resources/subscribe", map[string]any{"uri": "test://a/readme"})
		bob.result("resources/subscribe", map[string]any{"uri": "test://a/logo.png"})
		subscribed(t, up, "test://a/readme", 1)
		subscribed(t, up, "test://a/logo.png", 1)
		up.UpdateResource("test://a/readme")
		if got := nextUpdate(t, aliceStream, 3*time.Second); got != "test://a/readme" {
			t.Errorf("alice's update = %q", got)
		}
		for name, s := range map[string]<-chan json.RawMessage{"bob": bobStream, "alice's other session": otherStream} {
			if got := nextUpdate(t, s, 300*time.Millisecond); got != "" {
				t.Errorf("%s, not subscribed, got an update of %s", name, got)
			}
		}
		up.UpdateResource("test://a/logo.png")
		if got := nextUpdate(t, bobStream, 3*time.Second); got != "test://a/logo.png" {
			t.Errorf("bob's update = %q", got)
		}
		if got := nextUpdate(t, aliceStream, 300*time.Millisecond); got != "" {
			t.Errorf("alice got bob's update of %s", got)
		}
	})
}

// TestSubscribeRevoked checks that grants and credentials are checked
// again when an update is delivered: a stream whose caller is no longer in
// the granted group, or whose credential was withdrawn, gets no update.
func TestSubscribeRevoked(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.LegacyOnly, "a")
	up := ups["a"]
	var withdrawn atomic.Bool
	g := startGateway(t, conns, []grants.Rule{{Sources: []string{"group:readers"}, Resources: []string{"a/test://a/readme"}}},
		func(o *mcpmux.Options) {
			o.Credentials = func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
				if withdrawn.Load() {
					return mcpmux.Credential{}, fmt.Errorf("the credential was withdrawn")
				}
				return mcpmux.StaticCredentials(ctx, req)
			}
		})
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", "readers"), v20251125)
	c.result("resources/subscribe", map[string]any{"uri": "test://a/readme"})
	subscribed(t, up, "test://a/readme", 1)
	member := openStream(t, c, nil)
	left := openStream(t, c, http.Header{"X-Test-Groups": {""}})
	up.UpdateResource("test://a/readme")
	if got := nextUpdate(t, member, 3*time.Second); got != "test://a/readme" {
		t.Errorf("the member's update = %q", got)
	}
	if got := nextUpdate(t, left, 300*time.Millisecond); got != "" {
		t.Errorf("a stream of a caller no longer in the group got an update of %s", got)
	}
	withdrawn.Store(true)
	up.UpdateResource("test://a/readme")
	if got := nextUpdate(t, member, 500*time.Millisecond); got != "" {
		t.Errorf("an update of %s came with the credential withdrawn", got)
	}
}

// TestUnsubscribe checks that the upstream subscription is shared by the
// sessions that hold it: it is asked for once, given up only when the last
// session unsubscribes or ends, and updates then stop.
func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	eachSingleEra(t, func(t *testing.T, upEra testupstream.Era, up *testupstream.Server, conns []*connectors.Connector) {
		g := startGateway(t, conns, everyone)
		const uri = "test://a/readme"
		one := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
		two := dialRaw(t, g.URL+"/mcp", agentHeader("bob", ""), v20251125)
		oneStream, twoStream := openStream(t, one, nil), openStream(t, two, nil)
		for _, c := range []*rawClient{one, two, one} {
			c.result("resources/subscribe", map[string]any{"uri": uri})
		}
		subscribed(t, up, uri, 1)
		if upEra == testupstream.LegacyOnly {
			if n := countMethod(up, "resources/subscribe"); n != 1 {
				t.Errorf("three subscriptions sent %d resources/subscribe upstream, want 1", n)
			}
		}
		one.result("resources/unsubscribe", map[string]any{"uri": uri})
		if n := countMethod(up, "resources/unsubscribe"); n != 0 {
			t.Errorf("an unsubscribe with a subscriber left sent %d upstream", n)
		}
		up.UpdateResource(uri)
		if got := nextUpdate(t, twoStream, 3*time.Second); got != uri {
			t.Errorf("the remaining subscriber's update = %q", got)
		}
		if got := nextUpdate(t, oneStream, 300*time.Millisecond); got != "" {
			t.Errorf("an update of %s reached a session that unsubscribed", got)
		}
		// Unsubscribing from what one does not hold does nothing.
		one.result("resources/unsubscribe", map[string]any{"uri": uri})
		one.result("resources/unsubscribe", map[string]any{"uri": "test://a/none"})
		two.result("resources/unsubscribe", map[string]any{"uri": uri})
		subscribed(t, up, uri, 0)
		if upEra == testupstream.LegacyOnly {
			if n := countMethod(up, "resources/unsubscribe"); n != 1 {
				t.Errorf("the last unsubscribe sent %d resources/unsubscribe upstream, want 1", n)
			}
		}
		up.UpdateResource(uri)
		if got := nextUpdate(t, twoStream, 300*time.Millisecond); got != "" {
			t.Errorf("an update of %s came after the last unsubscribe", got)
		}

		// A session that ends gives its subscriptions up.
		two.result("resources/subscribe", map[string]any{"uri": uri})
		subscribed(t, up, uri, 1)
		if r := two.do(http.MethodDelete, nil, 0, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		subscribed(t, up, uri, 0)
	})
}

// TestSubscribeLimit checks the bound on one session's subscriptions:
// past it a subscription is refused with an error that says so, and
// unsubscribing makes room.
func TestSubscribeLimit(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.LegacyOnly, "a")
	g := startGateway(t, conns, everyone)
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	const limit = 256
	for i := range limit {
		c.result("resources/subscribe", map[string]any{"uri": fmt.Sprintf("test://a/items/%d", i)})
	}
	// The same one again is no new subscription.
	c.result("resources/subscribe", map[string]any{"uri": "test://a/items/0"})
	r := c.call("resources/subscribe", map[string]any{"uri": "test://a/readme"})
	if r.err == nil || !strings.Contains(r.err.Message, "256 resource subscriptions") {
		t.Fatalf("subscription %d: %s", limit+1, r.body)
	}
	c.result("resources/unsubscribe", map[string]any{"uri": "test://a/items/0"})
	c.result("resources/subscribe", map[string]any{"uri": "test://a/readme"})
	// The bound is the session's, not the caller's.
	other := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	other.result("resources/subscribe", map[string]any{"uri": "test://a/items/0"})
}

// TestSubscribeNewSession checks that the subscriptions held on a legacy
// upstream session that has expired are made again on the session that
// replaces it, and that their updates still arrive.
func TestSubscribeNewSession(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.LegacyOnly, "a")
	up := ups["a"]
	g := startGateway(t, conns, everyone)
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	stream := openStream(t, c, nil)
	c.result("resources/subscribe", map[string]any{"uri": "test://a/readme"})
	subscribed(t, up, "test://a/readme", 1)
	var old string
	for _, r := range up.Requests() {
		if r.Method == http.MethodPost && strings.Contains(string(r.Body), "resources/subscribe") {
			old = r.Header.Get("Mcp-Session-Id")
		}
	}
	// The upstream forgets the session, as one that restarted would.
	up.SetGuard(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Mcp-Session-Id") == old {
				http.Error(w, "session not found", http.StatusNotFound)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c.result("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}})
	eventually(t, 3*time.Second, "the subscription made again on the new session", func() bool {
		return countMethod(up, "resources/subscribe") == 2
	})
	// The upstream holds it on both sessions once it has handled the
	// request, which it records first: the old session, which it has not
	// forgotten (only its guard has), and the new one.
	subscribed(t, up, "test://a/readme", 2)
	up.UpdateResource("test://a/readme")
	if got := nextUpdate(t, stream, 3*time.Second); got != "test://a/readme" {
		t.Errorf("update after the new session = %q", got)
	}
}
