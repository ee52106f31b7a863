package oauthflow

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestRealDPoP: against oidc-provider with DPoP nonces required, and an
// MCP upstream behind a resource server that verifies DPoP, a connector
// with dpop on consents (answering the token endpoint's nonce challenge),
// calls (answering the resource server's), refreshes with the same key
// and calls again; the resource server refuses the same token used as a
// bearer token and with a proof signed by another key.
func TestRealDPoP(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, DPoPNonce: true})
	up.SetGuard(as.Protect)
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0] = realConfig(t, up.URL, nil)
		(*cfgs)[0].DPoP = DPoPOn
	})
	// Proofs carry the Manager's clock as iat, which servers check
	// against theirs.
	h.clock.Add(time.Since(h.clock.Now()))

	connectReal(t, h)
	g := h.grant("notion", "alice")
	if g.TokenType != TokenTypeDPoP || g.DPoPKey == "" {
		t.Fatalf("the grant's token type is %q", g.TokenType)
	}
	st, err := as.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TokenRequests["authorization_code"] != 2 || st.TokenErrors["authorization_code"] != 1 {
		t.Fatalf("code exchanges %v, refused %v: want one nonce challenge, then the token", st.TokenRequests, st.TokenErrors)
	}

	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := realCall(t, up.URL, tok); got == http.StatusUnauthorized {
		t.Fatalf("a DPoP call: %d, refusals %v", got, as.DPoPRefusals())
	}
	if r := as.DPoPRefusals(); len(r) != 1 || !strings.Contains(r[0], "nonce") {
		t.Fatalf("the resource server's refusals %v, want its one nonce challenge", r)
	}

	// The same token as a bearer token, and with another key's proof.
	bearer := Token{Header: "Bearer " + strings.TrimPrefix(tok.Header, "DPoP ")}
	if got := realCall(t, up.URL, bearer); got != http.StatusUnauthorized {
		t.Fatalf("a bearer use of the DPoP token: %d", got)
	}
	other, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	stolen := tok
	stolen.dpop = &dpopBinding{key: other, nonces: tok.dpop.nonces, now: time.Now}
	if got := realCall(t, up.URL, stolen); got != http.StatusUnauthorized {
		t.Fatalf("a proof of another key: %d", got)
	}
	refusals := as.DPoPRefusals()
	if len(refusals) != 3 || !strings.Contains(refusals[1], "bearer use") || !strings.Contains(refusals[2], "another key") {
		t.Fatalf("the resource server's refusals %v", refusals)
	}

	// The upstream's refusal makes a refresh, proved with the same key;
	// the new token is bound to it and serves.
	again, err := h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if again.Header == tok.Header || !again.Bound() || h.grant("notion", "alice").DPoPKey != g.DPoPKey {
		t.Fatal("the refresh did not give a new token bound to the same key")
	}
	if got := realCall(t, up.URL, again); got == http.StatusUnauthorized {
		t.Fatalf("a call with the refreshed token: %d, refusals %v", got, as.DPoPRefusals()[3:])
	}
	if st, _ := as.Stats(context.Background()); st.TokenRequests["refresh_token"] != 1 || st.TokenErrors["refresh_token"] != 0 {
		t.Fatalf("refreshes %v, refused %v: the kept nonce should have served", st.TokenRequests, st.TokenErrors)
	}
	if slices.ContainsFunc(as.DPoPRefusals()[3:], func(s string) bool { return !strings.Contains(s, "nonce") }) {
		t.Fatalf("the refreshed token was refused: %v", as.DPoPRefusals())
	}
}

// realCall sends an MCP ping to mcpURL with tok, as the gateway does, and
// returns the status: 401 if the resource server refused the token (the
// upstream may answer a ping outside a session otherwise, as
// checkAudience allows).
func realCall(t *testing.T, mcpURL string, tok Token) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", tok.Header)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := tok.RoundTrip(http.DefaultTransport, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRealDPoPFromMetadata: a connector that says nothing of DPoP binds
// its tokens when the real server advertises DPoP, and they serve;
// against the same server without DPoP (the other real tests), tokens
// stay bearer.
func TestRealDPoPFromMetadata(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, DPoP: true})
	up.SetGuard(as.Protect)
	h := realHarness(t, up.URL, nil)
	h.clock.Add(time.Since(h.clock.Now()))
	connectReal(t, h)
	tok, err := h.token("notion", "alice")
	if err != nil || !tok.Bound() {
		t.Fatalf("token bound %v, %v", tok.Bound(), err)
	}
	if got := realCall(t, up.URL, tok); got == http.StatusUnauthorized {
		t.Fatalf("a DPoP call: refusals %v", as.DPoPRefusals())
	}
}
