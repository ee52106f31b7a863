package oauthflow

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// realHarness is a Manager whose connector "notion" is the MCP server at
// connectorURL, found by real discovery and connected through a real
// authorization server.
func realHarness(t *testing.T, connectorURL string) *harness {
	t.Helper()
	pol := egress.Policy{AllowLoopbackHTTP: true, Timeout: 10 * time.Second}
	hc := egress.Client(pol)
	t.Cleanup(hc.CloseIdleConnections)
	return newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0] = Config{Connector: "notion", Resource: connectorURL, Consent: PerUser, InsecureLoopback: true, HTTP: hc,
			Discover: func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
				return discovery.Discover(ctx, hc, resource, discovery.Options{Challenge: ch, Policy: pol})
			}}
	})
}

// connectReal runs alice's consent at the real authorization server and
// returns her access token.
func connectReal(t *testing.T, h *harness) string {
	t.Helper()
	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cb, err := url.Parse(testas.Authorize(t, authURL, "alice", publicURL+CallbackPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Callback(context.Background(), cb.Query(), "alice"); err != nil {
		t.Fatalf("Callback: %v", err)
	}
	return accessToken(t, h)
}

// accessToken returns alice's access token, refreshing it if it expired.
func accessToken(t *testing.T, h *harness) string {
	t.Helper()
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return strings.TrimPrefix(tok.Header, "Bearer ")
}

// checkAudience checks that the server issued token for audience and that
// the upstream takes it.
func checkAudience(t *testing.T, as *testas.AS, up *testupstream.Server, token, audience string) {
	t.Helper()
	active, aud, err := as.Active(context.Background(), token)
	if err != nil || !active || aud != audience {
		t.Fatalf("the access token: active %v, audience %q, %v; want audience %q", active, aud, err, audience)
	}
	req, _ := http.NewRequest(http.MethodPost, up.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		t.Fatalf("the upstream refused the access token: %s", resp.Header.Get("WWW-Authenticate"))
	}
}

// TestRealResourceFromMetadata: an MCP server at http://host:port/mcp
// whose protected-resource metadata names the resource http://host:port
// is connected with that resource (RFC 9728, RFC 8707), which the real
// authorization server accepts alone, on the authorization request, the
// code exchange and the refresh.
func TestRealResourceFromMetadata(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	origin := strings.TrimSuffix(up.URL, "/mcp")
	if origin == up.URL {
		t.Fatalf("the upstream's URL %s has no path", up.URL)
	}
	as := testas.Start(t, testas.Options{Resource: origin})
	up.SetGuard(as.Protect)
	h := realHarness(t, up.URL)

	first := connectReal(t, h)
	checkAudience(t, as, up, first, origin)
	h.expire()
	refreshed := accessToken(t, h)
	if refreshed == first {
		t.Fatal("the expired token was not refreshed")
	}
	checkAudience(t, as, up, refreshed, origin)
	st, err := as.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TokenRequests["refresh_token"] != 1 || len(st.TokenErrors) != 0 {
		t.Fatalf("the server's token requests: %+v", st)
	}
}
