package oauthflow

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func TestPKCEQuality(t *testing.T) {
	// OF-10: 10,000 starts.
	h := newHarness(t, nil)
	ctx := context.Background()
	const n = 10000
	challenges := make(map[string]string, n) // challenge → auth URL
	states := make(map[string]bool, n)
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
	}
	keys, _ := h.st.List(ctx, prefixFlows)
	if len(keys) != n || len(challenges) != n || len(states) != n {
		t.Fatalf("%d flows, %d distinct challenges, %d distinct states; want %d", len(keys), len(challenges), len(states), n)
	}
	verifiers := make(map[string]bool, n)
	for _, k := range keys {
		var f flowRecord
		if err := getJSON(ctx, h.st, k, (*flowWire)(&f)); err != nil {
			t.Fatal(err)
		}
		v := f.Verifier
		if len(v) < 43 || len(v) > 128 || strings.Trim(v, unreserved) != "" {
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

func TestVerifierAlphabetUniform(t *testing.T) {
	counts := map[rune]int{}
	for range 2000 {
		for _, r := range newVerifier() {
			counts[r]++
		}
	}
	// 128,000 letters over 66: about 1,939 each. A biased mapping (byte %
	// 66 without rejection) gives the first 58 letters about 2,019 and the
	// others about 1,515.
	for _, r := range unreserved {
		if c := counts[r]; c < 1700 || c > 2200 {
			t.Errorf("%q drawn %d times", r, c)
		}
	}
}
