package oauthflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// dpopRS is a resource server on 127.0.0.1 that accepts only DPoP
// (RFC 9449 §7): the Authorization scheme DPoP, one proof whose signature
// verifies, with the request's htm and htu, the token's ath, the key the
// token is bound to (jkt, told by the test) and the current nonce.
type dpopRS struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	jkt      string // the thumbprint the token must be bound to
	nonce    string
	requests int
	refused  []string // why each refused request was refused
}

func newDPoPRS(t *testing.T) *dpopRS {
	rs := &dpopRS{t: t, nonce: "rs-nonce-1"}
	rs.srv = httptest.NewServer(http.HandlerFunc(rs.serve))
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *dpopRS) serve(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.requests++
	why, nonce := rs.check(r)
	if why == "" {
		w.Write([]byte("ok"))
		return
	}
	rs.refused = append(rs.refused, why)
	w.Header().Set("DPoP-Nonce", rs.nonce)
	if nonce {
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
	} else {
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
	}
	w.WriteHeader(http.StatusUnauthorized)
}

// check returns why r is refused ("" if it is not), and whether only the
// nonce was wrong.
func (rs *dpopRS) check(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	proofs := r.Header.Values("DPoP")
	if !ok || len(proofs) != 1 {
		return "not a DPoP token with one proof", false
	}
	p := verifyProof(rs.t, proofs[0])
	sum := sha256.Sum256([]byte(token))
	switch {
	case p.claims["htm"] != r.Method || p.claims["htu"] != rs.srv.URL+r.URL.Path:
		return "htm or htu", false
	case p.claims["ath"] != base64.RawURLEncoding.EncodeToString(sum[:]):
		return "ath", false
	case thumbprintOf(p.header.JWK) != rs.jkt:
		return "another key", false
	case p.claims["nonce"] != rs.nonce:
		return "nonce", true
	}
	return "", false
}

func TestDPoPTokenToResourceServer(t *testing.T) {
	// A DPoP-bound token goes to the resource server as "DPoP …" with a
	// proof of each request; the server's nonce challenge is answered
	// once and the nonce kept; a body that cannot be sent again is not.
	h := newHarness(t, dpopOn)
	newDPoPAS(t, h.as)
	h.connect(h.as, "notion", "alice")
	key, err := parseDPoPKey(h.grant("notion", "alice").DPoPKey)
	if err != nil {
		t.Fatal(err)
	}
	rs := newDPoPRS(t)
	rs.jkt = key.thumbprint
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Bound() || !strings.HasPrefix(tok.Header, "DPoP ") {
		t.Fatalf("token bound %v, scheme %q", tok.Bound(), strings.SplitN(tok.Header, " ", 2)[0])
	}
	send := func(body bool) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, rs.srv.URL+"/mcp?q=1", bytes.NewReader([]byte("{}")))
		if !body {
			req.GetBody = nil
		}
		req.Header.Set("Authorization", tok.Header)
		resp, err := tok.RoundTrip(http.DefaultTransport, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(true); got != http.StatusOK || rs.requests != 2 {
		t.Fatalf("first call: %d after %d requests (refused: %v); want 200 after a nonce challenge", got, rs.requests, rs.refused)
	}
	if got := send(true); got != http.StatusOK || rs.requests != 3 {
		t.Fatalf("second call: %d after %d requests; want 200 with the kept nonce", got, rs.requests)
	}
	rs.mu.Lock()
	rs.nonce = "rs-nonce-2"
	rs.mu.Unlock()
	if got := send(false); got != http.StatusUnauthorized || rs.requests != 4 {
		t.Fatalf("a body that cannot be sent again: %d after %d requests; want its 401 as it came", got, rs.requests)
	}
	if got := send(false); got != http.StatusOK {
		t.Fatalf("the nonce of the 401 was not kept: %d", got)
	}
}

func TestDPoPRefusedTokenRefreshed(t *testing.T) {
	// The upstream's refusal of a DPoP token ("DPoP …") is a refusal of
	// the current token, which is refreshed, and the new one is bound to
	// the same key.
	h := newHarness(t, dpopOn)
	newDPoPAS(t, h.as)
	h.connect(h.as, "notion", "alice")
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	before := h.as.tokenCalls.Load()
	again, err := h.m.Token(context.Background(), TokenRequest{Connector: "notion", User: "alice", Refused: tok.Header,
		Challenge: `DPoP error="invalid_token"`})
	if err != nil {
		t.Fatal(err)
	}
	if h.as.tokenCalls.Load() != before+1 || again.Header == tok.Header || !again.Bound() {
		t.Fatalf("a refused DPoP token was not refreshed into a bound one (%d token requests)", h.as.tokenCalls.Load()-before)
	}
	// An upstream connection sends each caller's request by the RoundTrip
	// of whichever token it was given last: the proof is of the token the
	// request presents.
	key, err := parseDPoPKey(h.grant("notion", "alice").DPoPKey)
	if err != nil {
		t.Fatal(err)
	}
	rs := newDPoPRS(t)
	rs.jkt = key.thumbprint
	for _, presented := range []Token{tok, again} {
		req, _ := http.NewRequest(http.MethodGet, rs.srv.URL+"/mcp", nil)
		req.Header.Set("Authorization", presented.Header)
		resp, err := again.RoundTrip(http.DefaultTransport, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a request presenting a token of the grant: %d, refused %v", resp.StatusCode, rs.refused)
		}
	}
}

func TestBearerTokenRoundTrip(t *testing.T) {
	// A bearer token's request goes as it is, with no proof.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", tok.Header)
	resp, err := tok.RoundTrip(http.DefaultTransport, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tok.Bound() || got.Get("DPoP") != "" || !strings.HasPrefix(got.Get("Authorization"), "Bearer ") {
		t.Fatalf("bearer token sent with bound %v, proof %q", tok.Bound(), got.Get("DPoP"))
	}
}
