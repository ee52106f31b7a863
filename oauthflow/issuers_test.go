package oauthflow

import (
	"context"
	"slices"
	"testing"
)

// TestIssuers checks that Issuers names the server that issued the tokens
// a connector's grants hold, once however many users hold them, and none
// once they are disconnected.
func TestIssuers(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	if got, err := h.m.Issuers(ctx, "notion"); err != nil || len(got) != 0 {
		t.Fatalf("before a consent: %v, %v", got, err)
	}
	h.connect(h.as, "notion", "alice")
	h.connect(h.as, "notion", "bob")
	if got, err := h.m.Issuers(ctx, "notion"); err != nil || !slices.Equal(got, []string{h.as.Issuer}) {
		t.Errorf("Issuers = %v, %v; want [%s]", got, err, h.as.Issuer)
	}
	for _, user := range []string{"alice", "bob"} {
		if _, err := h.m.Disconnect(ctx, "notion", user, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := h.m.Issuers(ctx, "notion"); err != nil || len(got) != 0 {
		t.Errorf("after the disconnects: %v, %v; want none", got, err)
	}
	if _, err := h.m.Issuers(ctx, "nope"); err == nil {
		t.Error("an unknown connector has issuers")
	}
}
