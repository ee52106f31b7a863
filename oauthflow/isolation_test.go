package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPerUserIsolation(t *testing.T) {
	// Per-user isolation: 2 users × 2 connectors, 1,000 interleaved concurrent
	// calls while tokens expire; each call gets its own user's token.
	var as2 *fakeAS
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		as2 = newFakeAS(t, "as2")
		*cfgs = append(*cfgs, as2.config("github"))
	})
	servers := map[string]*fakeAS{"notion": h.as, "github": as2}
	users := []string{"alice", "bob/with/slashes"}
	for c, a := range servers {
		for _, u := range users {
			h.connect(a, c, u)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for i := range 1000 {
		c, u := []string{"notion", "github"}[i%2], users[(i/2)%2]
		if i%250 == 0 {
			wg.Go(func() { h.clock.Add(time.Hour) }) // expire mid-run
		}
		wg.Go(func() {
			tok, err := h.token(c, u)
			want := fmt.Sprintf("Bearer AT-%s-CANARY-%s-", u, servers[c].tag)
			if err != nil || !strings.HasPrefix(tok.Header, want) {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s/%s: %v %v", c, u, tok.Key, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d mix-ups, first: %s", len(bad), bad[0])
	}
	// Keys partition by user and connector.
	keys := map[string]bool{}
	for c := range servers {
		for _, u := range users {
			tok, _ := h.token(c, u)
			keys[tok.Key] = true
		}
	}
	if len(keys) != 4 {
		t.Errorf("%d distinct keys for 4 grants", len(keys))
	}
	// A user who never consented gets nothing, whoever else did.
	var ce *ConsentError
	if _, err := h.token("notion", "carol"); !errors.As(err, &ce) {
		t.Errorf("carol: %v", err)
	}
	if _, err := h.token("notion", ""); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no identity: %v", err)
	}
}

func TestSharedConsentIgnoresUser(t *testing.T) {
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) { (*cfgs)[0].Consent = Shared })
	ctx := context.Background()
	if mode, ok := h.m.Consent("notion"); !ok || mode != Shared {
		t.Fatalf("Consent = %v %v", mode, ok)
	}
	var ce *ConsentError
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "admin") {
		t.Fatalf("before consent: %v", err)
	}
	h.connect(h.as, "notion", "admin")
	a, err1 := h.token("notion", "alice")
	b, err2 := h.token("notion", "bob")
	n, err3 := h.token("notion", "")
	if err1 != nil || err2 != nil || err3 != nil || a != b || a != n {
		t.Fatalf("shared tokens differ: %v %v %v", err1, err2, err3)
	}
	if _, err := h.st.Get(ctx, grantKey("notion", "")); err != nil || !strings.HasSuffix(grantKey("notion", ""), "/_shared") {
		t.Errorf("shared grant key: %v", err)
	}
	// The callback is still bound to whoever started it.
	authURL, _ := h.m.Start(ctx, "notion", "admin", "")
	_, err := h.m.Callback(ctx, h.as.authorize(t, authURL, "admin"), "mallory")
	wantCallbackError(t, err, 403, "another user")
	if _, err := h.m.Disconnect(ctx, "notion", "bob", "admin left"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) {
		t.Errorf("after a shared disconnect: %v", err)
	}
}

func TestKeySegments(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"alice@example.com", "alice@example%2Ecom"},
		{"a/b", "a%2Fb"},
		{"..", "%2E%2E"},
		{"_shared", "%5Fshared"},
		{"%2F", "%252F"},
		{"é", "%C3%A9"},
	} {
		if got := segment(tt.in); got != tt.want {
			t.Errorf("segment(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if grantKey("n", "_shared") == grantKey("n", "") {
		t.Error("a user named _shared shares the shared grant")
	}
}
