package oauthflow

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// TestSharedDiscoveryOutlivesItsFirstCaller checks that a discovery shared
// by two consents is not ended when the consent that began it goes away.
func TestSharedDiscoveryOutlivesItsFirstCaller(t *testing.T) {
	started, release := make(chan struct{}, 2), make(chan struct{})
	h := newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		discover := (*cfgs)[0].Discover
		(*cfgs)[0].Discover = func(ctx context.Context, resource string, ch *discovery.Challenge) (*discovery.Result, error) {
			started <- struct{}{}
			<-release
			if err := ctx.Err(); err != nil { // as an HTTP request would
				return nil, err
			}
			return discover(ctx, resource, ch)
		}
	})
	first, leave := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := h.m.Start(first, "notion", "alice", "")
		firstDone <- err
	}()
	<-started
	secondDone := make(chan error, 1)
	go func() {
		_, err := h.m.Start(context.Background(), "notion", "bob", "")
		secondDone <- err
	}()
	time.Sleep(50 * time.Millisecond) // bob joins the discovery alice began
	leave()
	close(release)
	<-firstDone
	if err := <-secondDone; err != nil {
		t.Fatalf("bob's consent failed with alice's: %v", err)
	}
}
