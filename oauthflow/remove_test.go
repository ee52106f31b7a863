package oauthflow

import (
	"context"
	"errors"
	"testing"
)

// TestRemove checks that removing a connector revokes every user's grant,
// fails each at once, and leaves no record of the connector behind.
func TestRemove(t *testing.T) {
	h := newHarness(t, nil)
	h.connect(h.as, "notion", "alice")
	h.connect(h.as, "notion", "bob/with/slashes")
	ctx := context.Background()
	revs, err := h.m.Remove(ctx, "notion", "the connector was removed")
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || !revs[0].Revoked || !revs[1].Revoked {
		t.Fatalf("revocations = %+v", revs)
	}
	if n := len(h.as.revokeRequests()); n != 4 { // a refresh and an access token each
		t.Errorf("the server saw %d revocations, want 4", n)
	}
	var ce *ConsentError
	if _, err := h.token("notion", "alice"); !errors.As(err, &ce) {
		t.Errorf("alice's token after removal: %v", err)
	}
	for _, prefix := range []string{prefixGrants + "notion/", prefixClients + "notion/"} {
		if keys, _ := h.st.List(ctx, prefix); len(keys) != 0 {
			t.Errorf("records left under %s: %v", prefix, keys)
		}
	}
	if _, err := h.m.Remove(ctx, "nope", ""); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("removing an unknown connector: %v", err)
	}
}
