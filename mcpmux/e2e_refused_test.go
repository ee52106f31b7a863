package mcpmux_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// rotatingGuard accepts only the bearer token in current; anything else
// gets a 401, or a 403 insufficient_scope while scopeShort is set.
func rotatingGuard(current *atomic.Value, scopeShort *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case scopeShort.Load():
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="notes:write"`)
				http.Error(w, "forbidden", http.StatusForbidden)
			case r.Header.Get("Authorization") != "Bearer "+current.Load().(string):
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// TestRefusedCredential checks what the gateway does when an upstream
// refuses a credential mid-session: on a 401 it asks the source once for
// a fresh one and retries the call; on a 403 insufficient_scope it hands
// the source the challenge, and answers with the consent the source asks
// for.
func TestRefusedCredential(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	conns := []*connectors.Connector{testConnector(t, "a", up, connectors.Auth{})}
	var current atomic.Value
	current.Store("token-1")
	var scopeShort atomic.Bool
	up.SetGuard(rotatingGuard(&current, &scopeShort))

	var mu sync.Mutex
	var refusals []string // the challenges the source was handed
	issued, generation := "token-1", 0
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
		o.Credentials = func(_ context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
			mu.Lock()
			defer mu.Unlock()
			if req.Refused != nil {
				if got := req.Refused.Header.Get("Authorization"); got != "Bearer "+issued {
					t.Errorf("the refused credential is %q, but the last one handed out was %q", got, "Bearer "+issued)
				}
				refusals = append(refusals, req.Challenge)
				if strings.Contains(req.Challenge, "insufficient_scope") {
					generation++ // the next consent makes a new grant, with a new key
					return mcpmux.Credential{}, &mcpmux.ConsentRequired{Connector: "a", Status: mcpmux.StatusNeedsAuth,
						URL: connectURL, Message: "Connector a needs more scope."}
				}
				issued = current.Load().(string) // a refresh
			}
			return mcpmux.Credential{Key: fmt.Sprint("k-", issued, "-", generation), Header: http.Header{"Authorization": {"Bearer " + issued}}}, nil
		}
	})
	for _, era := range rawEras {
		c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
		args := map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}}
		c.result("tools/call", args)

		// The upstream rotates the token: one refusal, one fresh
		// credential, and the call goes through.
		next := "token-" + era.Name
		current.Store(next)
		mu.Lock()
		refusals = nil
		mu.Unlock()
		if res := c.result("tools/call", args); strings.Contains(string(res), `"isError":true`) {
			t.Fatalf("%s: the call after rotation: %s", era.Name, res)
		}
		mu.Lock()
		if len(refusals) != 1 || !strings.Contains(refusals[0], "invalid_token") || issued != next {
			t.Errorf("%s: the source saw refusals %q and issued %q", era.Name, refusals, issued)
		}
		refusals = nil
		mu.Unlock()

		// The upstream wants more scope: the source gets the challenge and
		// the agent gets the connect URL.
		scopeShort.Store(true)
		r := c.call("tools/call", args)
		scopeShort.Store(false)
		if r.result == nil || !strings.Contains(string(r.result), connectURL) {
			t.Fatalf("%s: insufficient scope: %d %s", era.Name, r.status, r.body)
		}
		mu.Lock()
		if len(refusals) != 1 || !strings.Contains(refusals[0], `scope="notes:write"`) {
			t.Errorf("%s: the source saw refusals %q", era.Name, refusals)
		}
		mu.Unlock()
	}
}

// TestScopeRefusalIsNotAnEraRefusal checks that an upstream answering its
// first handshake with 403 insufficient_scope is not taken for one that
// does not speak the era: once the scope is there, the next call works.
func TestScopeRefusalIsNotAnEraRefusal(t *testing.T) {
	t.Parallel()
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	conns := []*connectors.Connector{testConnector(t, "a", up, connectors.Auth{Type: connectors.AuthBearer, Token: "t"})}
	var current atomic.Value
	current.Store("t")
	var scopeShort atomic.Bool
	scopeShort.Store(true)
	up.SetGuard(rotatingGuard(&current, &scopeShort))
	// Failed fetches are remembered for a few seconds; the clock skips them.
	var skipped atomic.Int64
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Duration(skipped.Load())) }
	})
	for _, era := range rawEras {
		c := dialRaw(t, g.URL+"/connectors/a/mcp", agentHeader("alice", ""), era.version)
		args := map[string]any{"name": "echo", "arguments": map[string]any{"message": "hi"}}
		scopeShort.Store(true)
		if r := c.call("tools/call", args); r.err == nil || !strings.Contains(r.err.Message, "403") {
			t.Fatalf("%s: with too little scope: %d %s", era.Name, r.status, r.body)
		}
		scopeShort.Store(false)
		skipped.Add(int64(time.Minute))
		c.result("tools/call", args)
	}
}
