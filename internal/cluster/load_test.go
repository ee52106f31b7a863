package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// call is one call a load generator made.
type call struct {
	start time.Time
	err   error
}

// load runs callers goroutines, each calling do in a loop (with its own
// number and its call's) until ctx ends, and returns every call made.
func load(ctx context.Context, callers int, do func(caller, n int) error) []call {
	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
	)
	for i := range callers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				c := call{start: time.Now()}
				c.err = do(i, n)
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return calls
}

// failures returns the errors of the calls that started at or after
// since, and how many such calls there were.
func failures(calls []call, since time.Time) (errs []error, n int) {
	for _, c := range calls {
		if c.start.Before(since) {
			continue
		}
		n++
		if c.err != nil {
			errs = append(errs, c.err)
		}
	}
	return errs, n
}

// reportFailures fails the test with the first few of errs.
func reportFailures(t *testing.T, what string, errs []error, n int) {
	t.Helper()
	if len(errs) == 0 {
		return
	}
	t.Errorf("%d of %d %s failed; the first: %v", len(errs), n, what, errs[0])
	for _, err := range errs[1:min(len(errs), 5)] {
		t.Logf("also: %v", err)
	}
}

// The kill: killCallers callers through the balancer, for killLoad
// before the kill and killLoad after it.
const (
	killCallers = 20
	killLoad    = 2 * time.Second
)

// killUnderLoad: instance c dies by SIGKILL while callers go through the
// balancer, right after it acknowledged a consent and a runtime
// connector. Every call started after the kill succeeds; what c
// acknowledged is there on the others; and a and b go on without a
// restart.
func killUnderLoad(t *testing.T, c *Cluster) {
	a, b, victim := c.Instances[0], c.Instances[1], c.Instances[2]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []call, 1) // a test that stops early never reads it
	go func() {
		done <- load(ctx, killCallers, func(caller, n int) error {
			_, err := CallTool(c.Balancer.URL+"/mcp", "alice", "wiki_echo", map[string]any{"message": fmt.Sprintf("load %d-%d", caller, n)})
			return err
		})
	}()
	time.Sleep(killLoad)

	c.Consent(t, victim, victim, "bob", "notes")
	extra := testupstream.StartT(t, testupstream.Options{Name: "extra"})
	body := fmt.Appendf(nil, `{"id":"extra","url":%q,"match_preset":false}`, extra.URL)
	if resp := MustSend(t, http.MethodPost, victim.Admin+"/mcpgate/connectors", "", body, nil); resp.Status != http.StatusCreated {
		t.Fatalf("adding a runtime connector at c: %d %s", resp.Status, resp.Body)
	}
	victim.Kill()
	killed := time.Now()
	time.Sleep(killLoad)
	cancel()
	calls := <-done
	errs, n := failures(calls, killed)
	reportFailures(t, "calls started after the kill", errs, n)
	before, all := failures(calls, time.Time{})
	t.Logf("%d calls, %d of them started after the kill; %d of those before it failed (in flight at the kill)", all, n, len(before)-len(errs))

	if _, err := CallTool(c.Balancer.URL+"/mcp", "bob", "notes_echo", map[string]any{"message": "bob after the kill"}); err != nil {
		t.Errorf("bob's consent through c, after c died: %v", err)
	}
	for _, p := range []*Process{a, b} {
		var last error
		waitFor(t, changeBound, p.Name+" to serve the runtime connector c added before it died", func() bool {
			_, last = CallTool(p.URL+"/mcp", "alice", "extra_echo", map[string]any{"message": "after the kill"})
			return last == nil
		}, &last)
	}
}
