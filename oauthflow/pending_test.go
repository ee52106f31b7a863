package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// pendingFlows reads the pending flows in the store, and checks that the
// pending index names exactly them.
func (h *harness) pendingFlows() []flowRecord {
	h.t.Helper()
	ctx := context.Background()
	keys, err := h.st.List(ctx, prefixFlows)
	if err != nil {
		h.t.Fatal(err)
	}
	var flows []flowRecord
	want := map[string]bool{}
	for _, key := range keys {
		var f flowRecord
		if err := getJSON(ctx, h.st, key, (*flowWire)(&f)); err != nil {
			h.t.Fatal(err)
		}
		flows = append(flows, f)
		want[pendingKey(&f, strings.TrimPrefix(key, prefixFlows))] = true
	}
	index, err := h.st.List(ctx, prefixPending)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(index) != len(want) {
		h.t.Fatalf("the pending index has %d keys for %d flows", len(index), len(want))
	}
	for _, key := range index {
		if !want[key] {
			h.t.Fatalf("the pending index key %q names no flow", key)
		}
	}
	return flows
}

// start starts a consent, which must succeed, and returns its URL.
func (h *harness) start(connector, user string) string {
	h.t.Helper()
	u, err := h.m.Start(context.Background(), connector, user, "")
	if err != nil {
		h.t.Fatalf("Start %s for %s: %v", connector, user, err)
	}
	return u
}

func TestPendingConsentsPerUser(t *testing.T) {
	// 1,000 connect calls by one user leave a few consents pending, the
	// newest, which still complete; another user's consent is untouched.
	h := newHarness(t, nil)
	ctx := context.Background()
	bobs := h.start("notion", "bob")
	var urls []string
	for range 1000 {
		urls = append(urls, h.start("notion", "alice"))
	}
	flows := h.pendingFlows()
	if len(flows) != maxFlowsPerConnector+1 {
		t.Fatalf("%d flows pending after 1,000 starts, want %d", len(flows), maxFlowsPerConnector+1)
	}
	_, err := h.m.Callback(ctx, h.as.authorize(t, urls[0], "alice"), "alice")
	wantCallbackError(t, err, http.StatusBadRequest, "state already used or expired")

	// Clicking Connect twice: the first click's consent still completes,
	// and so does the second's.
	for _, u := range urls[len(urls)-2:] {
		if _, err := h.m.Callback(ctx, h.as.authorize(t, u, "alice"), "alice"); err != nil {
			t.Fatalf("a recent consent: %v", err)
		}
		if _, err := h.token("notion", "alice"); err != nil {
			t.Fatalf("alice's token: %v", err)
		}
	}
	if _, err := h.m.Callback(ctx, h.as.authorize(t, bobs, "bob"), "bob"); err != nil {
		t.Fatalf("bob's consent after alice's 1,000: %v", err)
	}
	// Completed consents leave the index, so they no longer count.
	if flows := h.pendingFlows(); len(flows) != 1 || flows[0].Initiator != "alice" {
		t.Errorf("flows left: %v", flows)
	}
}

func TestPendingConsentsAcrossConnectors(t *testing.T) {
	// One user's consents across connectors are bounded too: the oldest
	// go, whatever their connector.
	ids := []string{"c0", "c1", "c2", "c3"}
	h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
		for _, id := range ids {
			*cfgs = append(*cfgs, h.as.config(id))
		}
	})
	var urls []string
	for _, id := range ids {
		for range maxFlowsPerConnector {
			urls = append(urls, h.start(id, "alice"))
		}
	}
	if n := len(h.pendingFlows()); n != maxFlowsPerUser {
		t.Fatalf("%d flows pending, want %d", n, maxFlowsPerUser)
	}
	ctx := context.Background()
	dropped := len(urls) - maxFlowsPerUser
	for i, u := range urls {
		_, err := h.m.Callback(ctx, h.as.authorize(t, u, "alice"), "alice")
		if (err == nil) != (i >= dropped) {
			t.Errorf("consent %d of %d: %v", i, len(urls), err)
		}
	}
}

func TestPendingConsentsInAll(t *testing.T) {
	// Past the bound on the store, a start is refused with a clear error,
	// until a consent completes or is dropped by a disconnect.
	h := newHarness(t, nil)
	h.m.maxFlows = 5
	ctx := context.Background()
	urls := map[string]string{}
	for i := range h.m.maxFlows {
		u := fmt.Sprintf("u%d", i)
		urls[u] = h.start("notion", u)
	}
	for _, user := range []string{"u5", "u0"} {
		_, err := h.m.Start(ctx, "notion", user, "")
		if !errors.Is(err, ErrTooManyConsents) || !strings.Contains(err.Error(), "try again") {
			t.Fatalf("a start past the bound by %s: %v", user, err)
		}
	}
	if _, err := h.m.Callback(ctx, h.as.authorize(t, urls["u0"], "u0"), "u0"); err != nil {
		t.Fatal(err)
	}
	h.start("notion", "u5")
	if _, err := h.m.Start(ctx, "notion", "u6", ""); !errors.Is(err, ErrTooManyConsents) {
		t.Fatalf("a start past the bound again: %v", err)
	}
	if _, err := h.m.Disconnect(ctx, "notion", "u1", ""); err != nil {
		t.Fatal(err)
	}
	h.start("notion", "u6")
	if n := len(h.pendingFlows()); n != h.m.maxFlows {
		t.Errorf("%d flows pending, want %d", n, h.m.maxFlows)
	}
}
