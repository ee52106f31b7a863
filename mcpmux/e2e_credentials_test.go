package mcpmux_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestOneCredentialLookupPerCall checks that a tools/call asks the
// credential source once, though it needs the credential to find the tool
// in the cache and again to forward the call. With OAuth a lookup reads
// and unseals a stored token, so twice would cost the hot path.
func TestOneCredentialLookupPerCall(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	var lookups atomic.Int64
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
		o.Credentials = func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
			lookups.Add(1)
			return mcpmux.StaticCredentials(ctx, req)
		}
	})
	for _, era := range rawEras {
		c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
		c.result("tools/list", nil)
		before := lookups.Load()
		const calls = 5
		for range calls {
			c.result("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}})
		}
		if n := lookups.Load() - before; n != calls {
			t.Errorf("%s: %d calls asked for a credential %d times", era.Name, calls, n)
		}
	}
}

// TestCredentialRoundTrip checks that a credential with its own RoundTrip
// sends every request that carries it, each with what it adds (for DPoP,
// a proof of that one request), in both eras.
func TestCredentialRoundTrip(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.BothEras, "a")
	var sent atomic.Int64
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
		o.Credentials = func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
			cred, err := mcpmux.StaticCredentials(ctx, req)
			cred.RoundTrip = func(rt http.RoundTripper, r *http.Request) (*http.Response, error) {
				r.Header.Set("X-Proof", strconv.FormatInt(sent.Add(1), 10))
				return rt.RoundTrip(r)
			}
			return cred, err
		}
	})
	for _, era := range rawEras {
		c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
		c.result("tools/list", nil)
		c.result("tools/call", map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "x"}})
	}
	seen := map[string]bool{}
	reqs := ups["a"].Requests()
	for _, r := range reqs {
		p := r.Header.Get("X-Proof")
		if p == "" || seen[p] {
			t.Errorf("a %s request to the upstream came with proof %q (empty or repeated)", r.Method, p)
		}
		seen[p] = true
	}
	if len(reqs) < 4 {
		t.Fatalf("the upstream saw %d requests", len(reqs))
	}
}
