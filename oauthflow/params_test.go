package oauthflow

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

func TestParametersEverywhere(t *testing.T) {
	// RFC 8707 resource (and audience) on the authorization
	// request, the code exchange and the refresh; an endpoint query that
	// tries to set our parameters loses them.
	h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0].Audience = "api://notion"
		h.as.meta.AuthorizationEndpoint = h.as.Issuer + "/authorize?client_id=evil&redirect_uri=https://evil.test&state=x&resource=evil&audience=evil&scope=evil&code_challenge=evil&prompt=consent"
	})
	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	const resource = "https://mcp.notion.test/mcp"
	for p, want := range map[string]string{"resource": resource, "audience": "api://notion", "redirect_uri": publicURL + CallbackPath, "scope": "read", "prompt": "consent"} {
		if len(q[p]) != 1 || q.Get(p) != want {
			t.Errorf("%s = %q, want exactly %q", p, q[p], want)
		}
	}
	for _, p := range []string{"client_id", "state", "code_challenge"} {
		if len(q[p]) != 1 || q.Get(p) == "evil" || q.Get(p) == "x" {
			t.Errorf("%s = %q", p, q[p])
		}
	}
	for i, r := range exchangeAndRefresh(t, h, authURL) {
		if r.form.Get("resource") != resource || r.form.Get("audience") != "api://notion" {
			t.Errorf("token request %d (%s): %v", i, r.form.Get("grant_type"), r.form)
		}
	}
}

// exchangeAndRefresh completes alice's consent at authURL, lets the token
// expire and asks for one, and returns the two token requests the server
// got: the code exchange and the refresh.
func exchangeAndRefresh(t *testing.T, h *harness, authURL string) []request {
	t.Helper()
	if _, err := h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice"); err != nil {
		t.Fatal(err)
	}
	h.expire()
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatal(err)
	}
	reqs := h.as.tokenRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d token requests, want the code's and the refresh's", len(reqs))
	}
	return reqs
}

func TestInvalidTarget(t *testing.T) {
	// invalid_target (RFC 8707) is a clear error that does not loop.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.as.set(func(a *fakeAS) {
		a.onToken = func(w http.ResponseWriter, _ request) bool { oauthError(w, 400, "invalid_target"); return true }
	})
	h.expire()
	var ce *ConsentError
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || ce.Status != connectors.StatusMisconfigured {
		t.Fatalf("Token = %v", err)
	}
	calls := h.as.tokenCalls.Load()
	for range 10 {
		h.token("notion", "alice")
	}
	if h.as.tokenCalls.Load() != calls {
		t.Fatal("invalid_target is retried")
	}
}

func TestTwoInstances(t *testing.T) {
	// Two Managers on one store (two instances, or two config generations
	// during a reload).
	h := newHarness(t, nil)
	other, err := New(Options{Store: h.st, PublicURL: publicURL, StateKey: h.m.stateKey, Now: h.clock.Now}, []Config{h.as.config("notion")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	ctx := context.Background()
	var ce *ConsentError
	if _, err := other.Token(ctx, TokenRequest{Connector: "notion", User: "alice"}); !errors.As(err, &ce) {
		t.Fatal(err)
	}
	// A consent started on one completes on the other.
	authURL, _ := h.m.Start(ctx, "notion", "alice", "")
	if _, err := other.Callback(ctx, h.as.authorize(t, authURL, "alice"), "alice"); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(recheck)
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatalf("the first instance does not see the consent: %v", err)
	}
	// Both refresh at once: one takes the grant's lease and refreshes;
	// the other waits for it and adopts the rotation instead of replaying
	// the refresh token and losing the grant to invalid_grant.
	h.expire()
	release := make(chan struct{})
	h.as.set(func(a *fakeAS) {
		a.onToken = func(http.ResponseWriter, request) bool { <-release; return false }
	})
	errs := make(chan error, 2)
	for _, m := range []*Manager{h.m, other} {
		go func() {
			_, err := m.Token(ctx, TokenRequest{Connector: "notion", User: "alice"})
			errs <- err
		}()
	}
	for h.as.tokenCalls.Load() < 2 || h.st.leaseHeld.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent refresh: %v", err)
		}
	}
	if n := h.as.tokenCalls.Load(); n != 2 {
		t.Errorf("%d token requests, want the code's and one refresh", n)
	}
	if g := h.grant("notion", "alice"); g.Connection.State != connectors.StateActive || g.RefreshToken == "" {
		t.Fatalf("grant after the race: %v", g)
	}
}

// TestResourceFromMetadata: the resource parameter is the resource the
// protected-resource metadata names (RFC 9728), here the origin of the
// connector URL, on the authorization request, the code exchange and the
// refresh; with no metadata it is the connector URL.
func TestResourceFromMetadata(t *testing.T) {
	for _, tc := range []struct{ name, published, want string }{
		{"metadata names the origin", "https://mcp.notion.test", "https://mcp.notion.test"},
		{"no metadata", "", "https://mcp.notion.test/mcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
				(*cfgs)[0].Discover = func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
					res, err := h.as.discover(ctx, resource, ch)
					res.Resource.Resource = tc.published
					return res, err
				}
			})
			authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(authURL)
			if got := u.Query()["resource"]; len(got) != 1 || got[0] != tc.want {
				t.Fatalf("authorization request resource = %q, want %q", got, tc.want)
			}
			for i, r := range exchangeAndRefresh(t, h, authURL) {
				if r.form.Get("resource") != tc.want {
					t.Errorf("token request %d (%s): resource %q, want %q", i, r.form.Get("grant_type"), r.form.Get("resource"), tc.want)
				}
			}
		})
	}
}
