// Package cluster runs mcpgate as several instances for tests of what
// they must agree on: three Caddy processes built from ./cmd/caddy with
// one Caddyfile, one PostgreSQL database (internal/pgtest) and one seal
// key, behind a fourth Caddy whose reverse_proxy balances them round
// robin, in front of real MCP upstreams (internal/testupstream), two of
// them guarded by real OAuth authorization servers (internal/testas).
//
// The instances are processes, not Caddy instances inside the test
// binary, so that each has its own memory, as on several machines, and
// one can be killed with SIGKILL; this package imports no Caddy. Their
// ports are fixed (see config.go), so one test binary of this package
// runs at a time and starts one cluster at a time.
package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/pgtest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TokenTTL is the lifetime of the access tokens at the notes connector's
// authorization server: short, so that a test sees several expiries.
const TokenTTL = 3 * time.Second

// RegistrationHold is how long the race connector's authorization server
// holds each dynamic client registration before it answers, so that two
// instances that both register do so at the same time, whatever the
// machine's load.
const RegistrationHold = 2 * time.Second

// Cluster is a running cluster. Its Process fields are the instances and
// the balancer; the rest are the peers behind them, for the tests to
// inspect.
type Cluster struct {
	// Instances are the three mcpgate instances, a, b and c.
	Instances []*Process
	// Balancer is the load balancer in front of them. Its URL is every
	// instance's public_url.
	Balancer *Process

	// Notes, Race and Wiki are the connectors' upstreams.
	Notes, Race, Wiki *testupstream.Server
	// NotesAS guards Notes, with access tokens that live TokenTTL and
	// accounts alice, bob and carol.
	NotesAS *testas.AS
	// RaceAS guards Race, behind a proxy that holds each registration for
	// RegistrationHold; its accounts are alice and bob.
	RaceAS *testas.AS
}

// Start starts a cluster running bin, a Caddy built by Build, and stops
// everything it started when the test ends.
func Start(t testing.TB, bin string) *Cluster {
	t.Helper()
	c := &Cluster{
		Notes: testupstream.StartT(t, testupstream.Options{Name: "notes"}),
		Race:  testupstream.StartT(t, testupstream.Options{Name: "race"}),
		Wiki:  testupstream.StartT(t, testupstream.Options{Name: "wiki"}),
	}
	c.NotesAS = testas.Start(t, testas.Options{Resource: c.Notes.URL, AccessTokenTTL: TokenTTL, Accounts: []string{"alice", "bob", "carol"}})
	c.Notes.SetGuard(c.NotesAS.Protect)
	c.RaceAS = startHeldAS(t, c.Race.URL)
	c.Race.SetGuard(c.RaceAS.Protect)

	dir := t.TempDir()
	env := sharedEnv(t)
	users, err := basicAuthUsers()
	if err != nil {
		t.Fatal(err)
	}
	public := fmt.Sprintf("http://127.0.0.1:%d", balancerPorts.HTTP)
	conf := instanceConfig(public, Connectors{Notes: c.Notes.URL, Race: c.Race.URL, Wiki: c.Wiki.URL}, users)
	// All three start at once, as a deployment's do: the schema's
	// migration must be safe when they race for it.
	var backends []string
	for i, ports := range instancePorts {
		name := string(rune('a' + i))
		portEnv := []string{fmt.Sprintf("MCPGATE_HTTP_PORT=%d", ports.HTTP), fmt.Sprintf("MCPGATE_ADMIN_PORT=%d", ports.Admin)}
		c.Instances = append(c.Instances, startProcess(t, bin, dir, name, ports, conf, append(portEnv, env...)))
		backends = append(backends, fmt.Sprintf("127.0.0.1:%d", ports.HTTP))
	}
	for _, p := range c.Instances {
		p.waitReady(t)
	}
	c.Balancer = startProcess(t, bin, dir, "lb", balancerPorts, balancerConfig(backends), nil)
	c.Balancer.waitReady(t)
	return c
}

// sharedEnv is the environment every instance shares: the database and
// the seal key, which sealed records need on every instance alike.
func sharedEnv(t testing.TB) []string {
	dsn := pgtest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand's contract)
	return []string{"MCPGATE_PG_DSN=" + dsn, "MCPGATE_SEAL_KEY=" + base64.StdEncoding.EncodeToString(key)}
}

// startHeldAS starts an authorization server for resource whose issuer is
// a proxy in front of it that holds every dynamic client registration
// (oidc-provider's POST /reg) for RegistrationHold.
func startHeldAS(t testing.TB, resource string) *testas.AS {
	t.Helper()
	// The proxy's address is the issuer, so it must be known before the
	// server starts; the server's is known only after.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	as := testas.Start(t, testas.Options{Resource: resource, Issuer: "http://" + ln.Addr().String(), Accounts: []string{"alice", "bob"}})
	target, err := url.Parse(as.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	proxy.Transport = tr
	srv := httptest.NewUnstartedServer(holdRegistrations(proxy))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return as
}

// holdRegistrations delays each registration request before next serves
// it.
func holdRegistrations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/reg" {
			select {
			case <-time.After(RegistrationHold):
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
