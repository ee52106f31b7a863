package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// instance is one gateway instance as the mcpgate app runs it: a
// registry whose every change builds the generation that Live serves,
// the generations sharing the agents' sessions and notification streams
// and the record of uses, and a site at url that serves agents with the
// generation serving now. Agents are whoever X-Test-User names.
type instance struct {
	reg   *connectors.Registry
	live  *Live
	opts  *Options
	usage *connectors.Usage
	url   string
}

// startInstance starts an instance of the connectors and grants of o,
// with its registry not open yet.
func startInstance(t *testing.T, o connectors.Options) *instance {
	t.Helper()
	reg, err := connectors.NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	streams, sessions, usage := mcpmux.NewStreams(), mcpmux.NewSessions(), new(connectors.Usage)
	opts := &Options{Mux: mcpmux.Options{Streams: streams, Sessions: sessions, Used: usage.Touch}, Usage: usage, Logger: zap.NewNop()}
	in := &instance{reg: reg, live: new(Live), opts: opts, usage: usage}
	build := func(s *connectors.Snapshot) error {
		g, err := Build(opts, s)
		if err == nil {
			in.live.Set(g)
		}
		return err
	}
	if err := build(reg.Snapshot()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := in.live.Acquire()
		defer g.Leave()
		g.Mux().ServeMCP(w, r, grants.Caller{ID: r.Header.Get("X-Test-User")}, "")
	}))
	in.url = srv.URL
	t.Cleanup(func() {
		reg.Close()
		streams.Close()
		sessions.Close()
		srv.Close()
		in.live.Close()
	})
	reg.Watch(build)
	return in
}

// open opens the registry on st, as the app's Start does, which gives
// the store to the generations built from then on first.
func (in *instance) open(t *testing.T, st store.Store) {
	t.Helper()
	in.opts.OAuth.Store = st
	if err := in.reg.Open(context.Background(), st); err != nil {
		t.Fatal(err)
	}
}

// dial connects an agent of user, in the era of opts.
func (in *instance) dial(t *testing.T, user string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	return agenttest.Dial(t, in.url, map[string]string{"X-Test-User": user}, opts...)
}

// listen connects a listening agent as user, in era.
func (in *instance) listen(t *testing.T, user string, era agenttest.Era) *agenttest.Notes {
	n := new(agenttest.Notes)
	agenttest.Listen(t, in.url+"/mcp", map[string]string{"X-Test-User": user}, era, n)
	return n
}
