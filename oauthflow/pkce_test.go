package oauthflow

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// unreserved is RFC 7636's alphabet for code verifiers (RFC 3986 §2.3).
const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// verifierLen is the length of oauth2.GenerateVerifier's verifiers: 32
// random bytes in base64url, the least RFC 7636 §4.1 allows.
const verifierLen = 43

func TestPKCEQuality(t *testing.T) {
	// Verifiers are distinct and well formed across 10,000 starts. One
	// user keeps only a few consents pending (see pending.go), so each
	// start's flow is read as soon as it is stored, found through its
	// state.
	h := newHarness(t, nil)
	ctx := context.Background()
	const n = 10000
	challenges := make(map[string]string, n) // challenge → auth URL
	states := make(map[string]bool, n)
	var flows []flowRecord
	for range n {
		authURL, err := h.m.Start(ctx, "notion", "alice", "")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(authURL)
		q := u.Query()
		if q.Get("code_challenge_method") != "S256" {
			t.Fatalf("method = %q", q.Get("code_challenge_method"))
		}
		challenges[q.Get("code_challenge")] = authURL
		states[q.Get("state")] = true
		id, ok := parseState(h.m.stateKey, q.Get("state"))
		var f flowRecord
		if !ok || getJSON(ctx, h.st, flowKey(id), (*flowWire)(&f)) != nil {
			t.Fatalf("no flow stored under the state %q", q.Get("state"))
		}
		flows = append(flows, f)
	}
	if len(flows) != n || len(challenges) != n || len(states) != n {
		t.Fatalf("%d flows, %d distinct challenges, %d distinct states; want %d", len(flows), len(challenges), len(states), n)
	}
	verifiers := make(map[string]bool, n)
	for _, f := range flows {
		v := f.Verifier
		if len(v) != verifierLen || strings.Trim(v, unreserved) != "" {
			t.Fatalf("verifier %q is not 43-128 unreserved characters", v)
		}
		authURL, ok := challenges[oauth2.S256ChallengeFromVerifier(v)]
		if !ok {
			t.Fatal("a verifier matches no challenge")
		}
		if strings.Contains(authURL, v) || strings.Contains(url.QueryEscape(authURL), v) {
			t.Fatal("a verifier is in its authorization URL")
		}
		verifiers[v] = true
	}
	if len(verifiers) != n {
		t.Fatalf("%d distinct verifiers, want %d", len(verifiers), n)
	}
	assertNoVerifier(t, h, verifiers)
}

// assertNoVerifier checks that no log line holds a verifier: every window
// of verifierLen unreserved characters is looked up.
func assertNoVerifier(t *testing.T, h *harness, verifiers map[string]bool) {
	runs := strings.FieldsFunc(h.logText(), func(r rune) bool { return !strings.ContainsRune(unreserved, r) })
	for _, run := range runs {
		for i := 0; i+verifierLen <= len(run); i++ {
			if verifiers[run[i:i+verifierLen]] {
				t.Fatal("a verifier is in the logs")
			}
		}
	}
}
