package oauthflow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// dpopAS makes a's token endpoint a DPoP one (RFC 9449 §5, §8): every
// token request must carry a valid proof for it with the current nonce,
// else it is refused with use_dpop_nonce and the nonce; the tokens it
// issues are of type DPoP. It records the thumbprint of each accepted
// proof's key.
type dpopAS struct {
	mu       sync.Mutex
	nonce    string
	rotate   bool // a new nonce on every refusal, which never satisfies
	n        int
	thumbs   []string
	refusals int
}

func newDPoPAS(t *testing.T, a *fakeAS) *dpopAS {
	d := &dpopAS{nonce: "nonce-1"}
	a.set(func(a *fakeAS) {
		a.extra = func(codeFor) map[string]any { return map[string]any{"token_type": "DPoP"} }
		a.onToken = func(w http.ResponseWriter, r request) bool {
			proof := r.header.Values("DPoP")
			if len(proof) != 1 {
				t.Errorf("token request with %d DPoP headers", len(proof))
				oauthError(w, http.StatusBadRequest, "invalid_dpop_proof")
				return true
			}
			p := verifyProof(t, proof[0])
			if p.claims["htm"] != http.MethodPost || p.claims["htu"] != a.Issuer+"/token" {
				t.Errorf("proof claims %v, want POST %s/token", p.claims, a.Issuer)
			}
			if _, ath := p.claims["ath"]; ath {
				t.Error("a token request's proof has ath, though it presents no access token")
			}
			return d.refuse(w, p)
		}
	})
	return d
}

// refuse answers a proof without the current nonce with use_dpop_nonce,
// and reports whether it did.
func (d *dpopAS) refuse(w http.ResponseWriter, p decodedProof) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.claims["nonce"] == d.nonce && !d.rotate {
		d.thumbs = append(d.thumbs, thumbprintOf(p.header.JWK))
		return false
	}
	d.refusals++
	if d.rotate {
		d.n++
		d.nonce = "nonce-r" + string(rune('a'+d.n))
	}
	w.Header().Set("DPoP-Nonce", d.nonce)
	oauthError(w, http.StatusBadRequest, "use_dpop_nonce")
	return true
}

func dpopOn(_ *harness, _ *Options, cfgs *[]Config) { (*cfgs)[0].DPoP = DPoPOn }

func TestDPoPTokenRequests(t *testing.T) {
	// A consent and a refresh with dpop on: each token request carries a
	// proof of one key, the server's nonce is honoured (retried once at
	// the consent, remembered for the refresh), and the grant records
	// the key and the token type.
	h := newHarness(t, dpopOn)
	d := newDPoPAS(t, h.as)
	h.connect(h.as, "notion", "alice")
	g := h.grant("notion", "alice")
	if g.TokenType != TokenTypeDPoP || g.DPoPKey == "" {
		t.Fatalf("grant token type %q, has key %v", g.TokenType, g.DPoPKey != "")
	}
	key, err := parseDPoPKey(g.DPoPKey)
	if err != nil {
		t.Fatal(err)
	}
	if calls := h.as.tokenCalls.Load(); calls != 2 || d.refusals != 1 {
		t.Fatalf("%d token requests, %d nonce refusals; want 2 and 1", calls, d.refusals)
	}
	h.clock.Add(2 * time.Hour)
	if _, err := h.token("notion", "alice"); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if calls := h.as.tokenCalls.Load(); calls != 3 || d.refusals != 1 {
		t.Fatalf("%d token requests, %d nonce refusals; the refresh should have sent the kept nonce", calls, d.refusals)
	}
	if len(d.thumbs) != 2 || d.thumbs[0] != key.thumbprint || d.thumbs[1] != key.thumbprint {
		t.Fatalf("proofs' keys %v, want the grant's %s twice", d.thumbs, key.thumbprint)
	}
	if after := h.grant("notion", "alice"); after.DPoPKey != g.DPoPKey || after.TokenType != TokenTypeDPoP {
		t.Fatal("the refresh changed the grant's key or token type")
	}
}

func TestDPoPNonceRetriedOnce(t *testing.T) {
	// A server that wants a new nonce every time gets two requests, not
	// a loop, and the consent fails.
	h := newHarness(t, dpopOn)
	d := newDPoPAS(t, h.as)
	d.rotate = true
	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.m.Callback(context.Background(), h.as.authorize(t, authURL, "alice"), "alice")
	wantCallbackError(t, err, http.StatusBadGateway, "use_dpop_nonce")
	if calls := h.as.tokenCalls.Load(); calls != 2 {
		t.Fatalf("%d token requests, want 2", calls)
	}
	if g := h.grant("notion", "alice"); g.AccessToken != "" || g.Connection.State != connectors.StatePending {
		t.Fatalf("grant after a refused consent: %v", g)
	}
}

func TestDPoPOffSendsNoProof(t *testing.T) {
	// Without dpop on, no proof goes to the token endpoint and the grant
	// has no key: behaviour is as before.
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	for _, r := range h.as.tokenReqs {
		if r.header.Get("DPoP") != "" {
			t.Fatal("a proof was sent with dpop off")
		}
	}
	if g := h.grant("notion", "alice"); g.DPoPKey != "" || g.TokenType != "" {
		t.Fatalf("grant has dpop state: type %q", g.TokenType)
	}
}

func TestDPoPConfigValidated(t *testing.T) {
	cfg := newFakeAS(t, "v").config("notion")
	cfg.DPoP = "maybe"
	if err := cfg.Validate(); err == nil {
		t.Fatal("dpop maybe validated")
	}
}

func TestDPoPDefaultFromMetadata(t *testing.T) {
	// Unset, dpop follows the server's metadata: ES256 advertised binds
	// the tokens, and diagnose and details say so; dpop off does not.
	advertise := func(h *harness) {
		h.as.set(func(a *fakeAS) { a.meta.DPoPSigningAlgValuesSupported = []string{"RS256", "ES256"} })
	}
	h := newHarness(t, nil)
	advertise(h)
	newDPoPAS(t, h.as)
	h.connect(h.as, "notion", "alice")
	if g := h.grant("notion", "alice"); g.TokenType != TokenTypeDPoP || g.DPoPKey == "" {
		t.Fatalf("advertised: grant token type %q", g.TokenType)
	}
	d, err := h.m.Details(context.Background(), "notion", "alice")
	if err != nil || d.TokenType != TokenTypeDPoP {
		t.Fatalf("details token type %q, %v", d.TokenType, err)
	}
	steps, err := h.m.Diagnose(context.Background(), "notion")
	if err != nil || !strings.Contains(steps[1].Detail, "DPoP (RFC 9449) is used: the authorization server advertises ES256") {
		t.Fatalf("diagnose: %v %v", steps, err)
	}

	off := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) { (*cfgs)[0].DPoP = DPoPOff })
	advertise(off)
	off.connect(off.as, "notion", "alice")
	if g := off.grant("notion", "alice"); g.TokenType != "" || g.DPoPKey != "" || off.as.tokenReqs[0].header.Get("DPoP") != "" {
		t.Fatalf("dpop off: grant token type %q", g.TokenType)
	}
	if d, _ := off.m.Details(context.Background(), "notion", "alice"); d.TokenType != "Bearer" {
		t.Fatalf("details token type %q, want Bearer", d.TokenType)
	}
	steps, _ = off.m.Diagnose(context.Background(), "notion")
	if !strings.Contains(steps[1].Detail, "is not used: the connector says dpop off") {
		t.Fatalf("diagnose with dpop off: %v", steps)
	}
	plain := newHarness(t, nil)
	steps, _ = plain.m.Diagnose(context.Background(), "notion")
	if !strings.Contains(steps[1].Detail, "is not used: the authorization server does not advertise") {
		t.Fatalf("diagnose without DPoP metadata: %v", steps)
	}
}

func TestDPoPKeyNeverLeaks(t *testing.T) {
	// Through a consent, a nonce challenge, a refresh and a disconnect
	// with dpop on, the connection's private key appears in no log line
	// (at debug level), event, error, detail or diagnosis: only in the
	// sealed grant.
	ev := &events{}
	h := newHarness(t, func(_ *harness, opts *Options, cfgs *[]Config) {
		(*cfgs)[0].DPoP = DPoPOn
		opts.OnEvent = ev.add
	})
	newDPoPAS(t, h.as)
	h.connect(h.as, "notion", "alice")
	key, err := parseDPoPKey(h.grant("notion", "alice").DPoPKey)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Add(2 * time.Hour)
	tok, err := h.token("notion", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	d, err := h.m.Details(context.Background(), "notion", "alice")
	steps, _ := h.m.Diagnose(context.Background(), "notion")
	seen = append(seen, fmt.Sprintf("%+v %v %+v %#v", d, err, steps, tok))
	for _, v := range []any{d, steps, tok} {
		b, _ := json.Marshal(v)
		seen = append(seen, string(b))
	}
	rev, err := h.m.Disconnect(context.Background(), "notion", "alice", "a test")
	seen = append(seen, fmt.Sprintf("%+v %v", rev, err))
	for _, e := range ev.take() {
		seen = append(seen, fmt.Sprintf("%+v", e))
	}
	for _, e := range h.logs.All() {
		seen = append(seen, e.Message, fmt.Sprint(e.ContextMap()))
	}
	raw, _ := key.priv.Bytes()
	for _, s := range seen {
		for _, secret := range []string{key.encode(), key.priv.D.String(), fmt.Sprintf("%x", raw), base64.StdEncoding.EncodeToString(raw)} {
			if strings.Contains(s, secret) {
				t.Fatalf("the dpop private key leaks: %s", s)
			}
		}
	}
}
