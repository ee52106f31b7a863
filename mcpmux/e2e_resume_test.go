package mcpmux_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// memoryEnds is a SessionEnds in memory, standing in for the shared store:
// it tells the Sessions of every instance of an ended session, as the
// store's change notices do, unless the notices are lost; it counts its
// reads, and fails while down is set.
type memoryEnds struct {
	mu      sync.Mutex
	ended   map[string]bool
	notify  []*mcpmux.Sessions
	lost    atomic.Bool
	down    atomic.Bool
	reads   atomic.Int64
	history []string // the tags End was given, in order
}

var errStoreDown = errors.New("store unreachable")

func (e *memoryEnds) End(_ context.Context, tag string) error {
	if e.down.Load() {
		return errStoreDown
	}
	e.mu.Lock()
	e.ended[tag] = true
	e.history = append(e.history, tag)
	notify := e.notify
	e.mu.Unlock()
	if !e.lost.Load() {
		for _, s := range notify {
			s.EndLocal(tag)
		}
	}
	return nil
}

func (e *memoryEnds) Ended(_ context.Context, tag string) (bool, error) {
	e.reads.Add(1)
	if e.down.Load() {
		return false, errStoreDown
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended[tag], nil
}

// tags returns the tags End was given.
func (e *memoryEnds) tags() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.history)
}

// cluster is gateways that share a session key and the record of ended
// sessions, but no Sessions: instances of mcpgate behind a load balancer.
type cluster struct {
	t     *testing.T
	conns []*connectors.Connector
	key   []byte
	ends  *memoryEnds
	clock *fakeClock
}

// newCluster returns a cluster serving one upstream, "a".
func newCluster(t *testing.T) *cluster {
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	return &cluster{t: t, conns: []*connectors.Connector{testConnector(t, "a", up, bearer)},
		key: []byte("0123456789abcdef0123456789abcdef"), ends: &memoryEnds{ended: map[string]bool{}}, clock: &fakeClock{}}
}

// start starts one more instance, with a Sessions of its own.
func (c *cluster) start() *gateway {
	sessions := mcpmux.NewSessions()
	c.t.Cleanup(sessions.Close)
	c.ends.mu.Lock()
	c.ends.notify = append(c.ends.notify, sessions)
	c.ends.mu.Unlock()
	return startGateway(c.t, c.conns, everyone, c.clock.option(), func(o *mcpmux.Options) {
		o.Sessions, o.SessionKey, o.Ended = sessions, c.key, c.ends
	})
}

// balancer forwards every request to the gateway it points at, as a load
// balancer in front of several instances does.
type balancer struct {
	URL string
	to  atomic.Pointer[httputil.ReverseProxy]
}

// startBalancer starts a balancer pointing at first.
func startBalancer(t *testing.T, first *gateway) *balancer {
	b := &balancer{}
	b.point(t, first)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.to.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

// point sends the requests from now on to g.
func (b *balancer) point(t *testing.T, g *gateway) {
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p.Transport = tr
	b.to.Store(p)
}

// in returns a raw client of user on the legacy session sid at url.
func in(t *testing.T, url, user, sid string) *rawClient {
	c := newRaw(t, url, agentHeader(user, ""))
	c.version, c.session = v20251125, sid
	return c
}

// notFound reports whether r is the answer to a session the gateway does
// not know: 404, saying nothing of why.
func notFound(r *rawReply) bool {
	return r.status == http.StatusNotFound && r.err != nil && r.err.Message == "session not found: initialize again"
}

// TestSessionResumesAnywhere checks a legacy session across instances
// that share a session key but hold their sessions apart: a real mcp-go
// client initialized through A lists through B and calls through C; its
// DELETE through B ends it on a fresh instance at once, on A at once when
// the notice comes, and on A within SessionRecheck when the notice is
// lost. Meanwhile A serves it from memory, asking the store nothing.
func TestSessionResumesAnywhere(t *testing.T) {
	t.Parallel()
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "notice", true: "lost notice"}[lost], func(t *testing.T) {
			cl := newCluster(t)
			a, b, c := cl.start(), cl.start(), cl.start()
			lb := startBalancer(t, a)
			agent := agenttest.Dial(t, lb.URL+"/mcp", map[string]string{"X-Test-User": "alice"}, eras[0].Opts...)
			sid := agent.GetSessionId()
			if !strings.HasPrefix(sid, "mcpgate-s1.") || strings.ContainsFunc(sid, func(r rune) bool { return r <= ' ' || r > '~' }) {
				t.Fatalf("session id %q is not a sealed, printable one", sid)
			}
			lb.point(t, b)
			if names := toolNames(t, agent); !slices.Contains(names, "a_echo") {
				t.Fatalf("tools/list through B: %v", names)
			}
			lb.point(t, c)
			if res, err := callTool(t, agent, "a_echo", map[string]any{"message": "through C"}); err != nil || res.IsError {
				t.Fatalf("tools/call through C: %+v, %v", res, err)
			}

			// A holds the session and checked it at initialize: within
			// SessionRecheck it serves it from memory.
			reads := cl.ends.reads.Load()
			onA := in(t, a.URL+"/mcp", "alice", sid)
			onA.result("tools/list", nil)
			if n := cl.ends.reads.Load() - reads; n != 0 {
				t.Errorf("a held session asked the store %d times", n)
			}

			cl.ends.lost.Store(lost)
			// mcp-go's own DELETE leaves out the client's headers, and so
			// the caller: the raw client sends it through the balancer.
			lb.point(t, b)
			if r := in(t, lb.URL+"/mcp", "alice", sid).do(http.MethodDelete, nil, 0, nil); r.status != http.StatusNoContent {
				t.Fatalf("DELETE through B: %d %s", r.status, r.body)
			}
			if tags := cl.ends.tags(); len(tags) != 1 || strings.Contains(tags[0], sid) {
				t.Fatalf("End was given %q for %q", tags, sid)
			}
			if r := in(t, b.URL+"/mcp", "alice", sid).call("tools/list", nil); !notFound(r) {
				t.Errorf("through B after DELETE: %d %s", r.status, r.body)
			}
			if r := in(t, cl.start().URL+"/mcp", "alice", sid).call("tools/list", nil); !notFound(r) {
				t.Errorf("through a fresh instance after DELETE: %d %s", r.status, r.body)
			}
			if lost {
				onA.result("tools/list", nil) // the bound a lost notice leaves
				cl.clock.advance(mcpmux.SessionRecheck)
			}
			if r := onA.call("tools/list", nil); !notFound(r) {
				t.Errorf("through A after DELETE: %d %s", r.status, r.body)
			}
		})
	}
}

// TestSessionResumeRefused checks what no instance resumes, nor serves
// when it holds the session: another caller's id, an id for another
// endpoint, a tampered or truncated id, and one past SessionMaxAge. Each
// answers as an unknown session does, and only a well sealed id costs a
// store read.
func TestSessionResumeRefused(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	a, b := cl.start(), cl.start()
	sid := dialRaw(t, a.URL+"/mcp", agentHeader("alice", ""), v20251125).session
	body := strings.TrimPrefix(sid, "mcpgate-s1.")
	tampered := []byte(body)
	if mid := len(body) / 2; tampered[mid] == 'A' {
		tampered[mid] = 'B'
	} else {
		tampered[mid] = 'A'
	}
	reads := cl.ends.reads.Load()
	for _, g := range []struct {
		name string
		gw   *gateway
	}{{"held on A", a}, {"resumed on B", b}} {
		for _, tc := range []struct{ name, path, user, id string }{
			{"unknown", "/mcp", "alice", "mcpgate-s1.AAAA"},
			{"another caller", "/mcp", "bob", sid},
			{"another endpoint", "/connectors/a/mcp", "alice", sid},
			{"tampered", "/mcp", "alice", "mcpgate-s1." + string(tampered)},
			{"truncated", "/mcp", "alice", sid[:len(sid)-3]},
			{"another format", "/mcp", "alice", "mcpgate1." + body},
		} {
			if r := in(t, g.gw.URL+tc.path, tc.user, tc.id).call("tools/list", nil); !notFound(r) {
				t.Errorf("%s, %s: %d %s", g.name, tc.name, r.status, r.body)
			}
		}
	}
	if n := cl.ends.reads.Load() - reads; n != 0 {
		t.Errorf("ids that do not open cost %d store reads", n)
	}
	// Both serve it, until it is too old for either.
	in(t, b.URL+"/mcp", "alice", sid).result("tools/list", nil)
	cl.clock.advance(mcpmux.SessionMaxAge + time.Second)
	for name, g := range map[string]*gateway{"A": a, "B": b, "fresh": cl.start()} {
		if r := in(t, g.URL+"/mcp", "alice", sid).call("tools/list", nil); !notFound(r) {
			t.Errorf("through %s past SessionMaxAge: %d %s", name, r.status, r.body)
		}
	}
}

// TestSessionStoreDown checks the failures of the record of ended
// sessions: while it is down, a held session goes on, a session held
// elsewhere is not resumed (the agent initializes again, which needs no
// store), and DELETE answers 503 and ends nothing, so that the agent does
// not believe a session ended that other instances still serve.
func TestSessionStoreDown(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	a, b := cl.start(), cl.start()
	onA := dialRaw(t, a.URL+"/mcp", agentHeader("alice", ""), v20251125)
	cl.ends.down.Store(true)
	cl.clock.advance(mcpmux.SessionRecheck)
	onA.result("tools/list", nil)
	onB := in(t, b.URL+"/mcp", "alice", onA.session)
	if r := onB.call("tools/list", nil); !notFound(r) {
		t.Errorf("resumed while the store is down: %d %s", r.status, r.body)
	}
	if r := onA.do(http.MethodDelete, nil, 0, nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "try again") {
		t.Errorf("DELETE while the store is down: %d %s", r.status, r.body)
	}
	onA.result("tools/list", nil)
	cl.ends.down.Store(false)
	onB.result("tools/list", nil)
	if r := onA.do(http.MethodDelete, nil, 0, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	if r := onB.call("tools/list", nil); !notFound(r) {
		t.Errorf("on B after DELETE on A: %d %s", r.status, r.body)
	}
}

// TestSessionKeyOptions checks the session options New refuses: a key
// that is not 32 bytes, and a key without Ended; and that without a key,
// ids stay 128 random bits in hex, as before.
func TestSessionKeyOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts mcpmux.Options
		want string
	}{
		{"short key", mcpmux.Options{SessionKey: make([]byte, 16), Ended: &memoryEnds{}}, "session key is 16 bytes, want 32"},
		{"no Ended", mcpmux.Options{SessionKey: make([]byte, 32)}, "a session key needs Ended"},
	} {
		if m, err := mcpmux.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			if m != nil {
				m.Close()
			}
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	up := testupstream.StartT(t, testupstream.Options{Name: "a", BearerToken: upstreamAuth})
	g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone,
		func(o *mcpmux.Options) { o.Ended = &memoryEnds{} })
	sid := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125).session
	if len(sid) != 32 || strings.Trim(sid, "0123456789abcdef") != "" {
		t.Errorf("session id without a key: %q", sid)
	}
}

// BenchmarkToolsCallGatewaySealed is BenchmarkToolsCallGateway with sealed
// session ids: a held session costs no more per call than a random id.
func BenchmarkToolsCallGatewaySealed(b *testing.B) {
	up := benchUpstream(b, "bench")
	g := startGateway(b, []*connectors.Connector{testConnector(b, "bench", up, connectors.Auth{})}, benchGrant,
		func(o *mcpmux.Options) {
			o.SessionKey, o.Ended = []byte("0123456789abcdef0123456789abcdef"), &memoryEnds{ended: map[string]bool{}}
		})
	benchParallel(b, g.URL+"/mcp", "tools/call", `{"name":"bench_echo",`+benchEcho+`}`)
}
