package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// call is one call a load generator made.
type call struct {
	start time.Time
	took  time.Duration
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
				c.took = time.Since(c.start)
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
// since, but those that excuse (nil: none) excuses, which it counts, and
// how many calls started since.
func failures(calls []call, since time.Time, excuse func(call) bool) (errs []error, excused, n int) {
	for _, c := range calls {
		if c.start.Before(since) {
			continue
		}
		n++
		switch {
		case c.err == nil:
		case excuse != nil && excuse(c):
			excused++
		default:
			errs = append(errs, c.err)
		}
	}
	return errs, excused, n
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

// The refresh storm: stormCallers callers through the balancer for
// stormDuration, several lifetimes of an access token.
const (
	stormCallers  = 150
	stormDuration = 4 * TokenTTL
	stormMarker   = "cluster-storm-"
)

// inFlight is how long a call must take for its access tokens to expire
// on the way, which no instance can prevent: the gateway hands a token
// out until it has lived half its lifetime, and oidc-provider counts the
// lifetime from the issue time rounded down to the second, so a token
// handed out may have half its lifetime less a second left; and a call
// whose token the upstream refuses (401) is retried once with the next.
// Only a storm on a machine slowed to a crawl has calls this slow.
const inFlight = 2 * (TokenTTL/2 - time.Second)

// expiredInFlight excuses a call of the storm that the upstream refused
// after its tokens could have expired on the way.
func expiredInFlight(c call) bool {
	return c.took >= inFlight && strings.Contains(c.err.Error(), "upstream refused the credential (HTTP 401)")
}

// refreshStorm: callers spread over the three instances by the balancer
// keep calling across several expiries of carol's access token. Each
// expiry costs one refresh at the authorization server, whichever
// instance meets it first; none is refused (a refresh token used twice
// would be, and would revoke the grant, RFC 9700 section 4.14.2); and the
// grant stays active.
func refreshStorm(t *testing.T, c *Cluster) {
	c.Consent(t, c.Balancer, c.Balancer, "carol", "notes")
	c.Notes.ResetRequests()
	before := asStats(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), stormDuration)
	defer cancel()
	start := time.Now()
	calls := load(ctx, stormCallers, func(caller, n int) error {
		msg := fmt.Sprintf("%s%d-%d", stormMarker, caller, n)
		_, err := CallTool(c.Balancer.URL+"/mcp", "carol", "notes_echo", map[string]any{"message": msg})
		return err
	})
	elapsed := time.Since(start)
	after := asStats(t, c)
	errs, excused, n := failures(calls, start, expiredInFlight)
	reportFailures(t, "calls of the storm", errs, n)
	if excused > 0 {
		t.Logf("%d calls took over %v and were refused: their tokens expired on the way", excused, inFlight)
	}

	refreshes := after.TokenRequests["refresh_token"] - before.TokenRequests["refresh_token"]
	refused := after.TokenErrors["refresh_token"] - before.TokenErrors["refresh_token"]
	tokens := bearerTokens(c.Notes.Requests(), stormMarker)
	// A token is refreshed once it has lived half its life, so an
	// instance refreshes at most once per half lifetime.
	halves := int(elapsed / (TokenTTL / 2))
	t.Logf("%d calls in %v: %d refreshes, %d refused, %d access tokens reached the upstream, %d half lifetimes passed",
		n, elapsed.Round(time.Millisecond), refreshes, refused, len(tokens), halves)
	if refused != 0 {
		t.Errorf("the authorization server refused %d refreshes", refused)
	}
	// Every token the upstream saw but the first was one refresh's, and
	// every refresh's token was used: one refresh per expiry.
	if refreshes < len(tokens)-1 || refreshes > len(tokens) || refreshes > halves+1 {
		t.Errorf("%d refreshes for %d tokens used over %d half lifetimes: want one refresh per expiry", refreshes, len(tokens), halves)
	}
	if refreshes < 2 {
		t.Errorf("the storm saw %d refreshes: it did not last across several expiries", refreshes)
	}
	for _, p := range c.Instances {
		if _, err := CallTool(p.URL+"/mcp", "carol", "notes_echo", map[string]any{"message": "after the storm"}); err != nil {
			t.Errorf("carol's grant after the storm, through %s: %v", p.Name, err)
		}
	}
}

// asStats reads the notes authorization server's counters.
func asStats(t *testing.T, c *Cluster) (st struct{ TokenRequests, TokenErrors map[string]int }) {
	t.Helper()
	s, err := c.NotesAS.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.TokenRequests, st.TokenErrors = s.TokenRequests, s.TokenErrors
	return st
}

// bearerTokens returns the distinct bearer tokens of the requests whose
// body holds marker.
func bearerTokens(reqs []testupstream.Request, marker string) map[string]bool {
	tokens := map[string]bool{}
	for _, r := range reqs {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && bytes.Contains(r.Body, []byte(marker)) {
			tokens[token] = true
		}
	}
	return tokens
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
	errs, _, n := failures(calls, killed, nil)
	reportFailures(t, "calls started after the kill", errs, n)
	before, _, all := failures(calls, time.Time{}, nil)
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
