package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain removes the Caddy binary's directory when the tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binDir holds the Caddy binary the tests built, for TestMain to remove.
var binDir string

// caddyBinary builds Caddy once per test binary, on first use.
var caddyBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mcpgate-cluster")
	if err != nil {
		return "", err
	}
	binDir = dir
	return Build(dir)
})

// startCluster starts a cluster of the test binary's Caddy.
func startCluster(t *testing.T) *Cluster {
	t.Helper()
	bin, err := caddyBinary()
	if err != nil {
		t.Fatal(err)
	}
	return Start(t, bin)
}

// TestCluster runs three instances on one database behind a balancer and
// checks, one subtest at a time on the same cluster, what several
// instances must agree on. The subtests use distinct users or connectors,
// so that none depends on another's state; the kill comes last.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	t.Run("consent across instances", func(t *testing.T) { consentAcross(t, c) })
	t.Run("legacy session anywhere", func(t *testing.T) { sessionAnywhere(t, c) })
	t.Run("tool selection reaches the others", func(t *testing.T) { selectionReaches(t, c) })
	t.Run("first consents race", func(t *testing.T) {
		if n := firstConsentsRace(t, c); n != 1 {
			t.Errorf("two first consents at once registered %d clients at the authorization server, want one", n)
		}
	})
	t.Run("refresh storm", func(t *testing.T) { refreshStorm(t, c) })
	t.Run("kill -9 under load", func(t *testing.T) { killUnderLoad(t, c) })
}

// changeBound is how long the test waits for a change made through one
// instance to take effect on another. The promise is 2 s; the wait is
// longer, so that a loaded machine does not fail it, and the time taken
// is reported.
const changeBound = 10 * time.Second

// consentAcross: an agent's call through c needs alice's consent; she
// starts it through a, her browser comes back through b, and the agent's
// call through c then goes through.
func consentAcross(t *testing.T, c *Cluster) {
	a, b, third := c.Instances[0], c.Instances[1], c.Instances[2]
	call := func() error {
		_, err := CallTool(third.URL+"/mcp", "alice", "notes_echo", map[string]any{"message": "hi from c"})
		return err
	}
	if err := call(); err == nil || !strings.Contains(err.Error(), "needs your consent") {
		t.Fatalf("alice's call through c before she consented: %v", err)
	}
	authURL, err := Connect(a, "alice", "notes")
	if err != nil {
		t.Fatal(err)
	}
	if err := Callback(b, "alice", "notes", c.Authorize(t, authURL, "alice")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var last error
	waitFor(t, changeBound, "alice's call through c to go through after her consent through a and b", func() bool {
		last = call()
		return last == nil
	}, &last)
	t.Logf("alice's consent through a and b reached c in %v (the promise: 2s)", time.Since(start).Round(time.Millisecond))
}

// sessionEndBound is how long an instance may take to end a session that
// another instance deleted: at once on the notice, and within the
// recheck's minute when a notice is lost; with slack for a loaded machine.
const sessionEndBound = 75 * time.Second

// sessionAnywhere: a legacy session initialized through a serves through
// b and c; deleted through b, it ends on a too.
func sessionAnywhere(t *testing.T, c *Cluster) {
	a, b, third := c.Instances[0], c.Instances[1], c.Instances[2]
	s, err := Initialize(a.URL+"/mcp", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Instances {
		names, err := s.ToolNames(p.URL + "/mcp")
		if err != nil || !slices.Contains(names, "wiki_echo") {
			t.Fatalf("the session from a, through %s: %v %v", p.Name, names, err)
		}
	}
	status, err := s.Delete(b.URL + "/mcp")
	if err != nil || status >= 300 {
		t.Fatalf("DELETE through b: %d %v", status, err)
	}
	start := time.Now()
	for _, p := range []*Process{a, third} {
		var last error
		waitFor(t, sessionEndBound, "the session to end on "+p.Name, func() bool {
			var resp Response
			resp, last = s.Call(p.URL+"/mcp", "tools/list", nil)
			return last == nil && resp.Status == http.StatusNotFound
		}, &last)
	}
	t.Logf("the session deleted through b ended on a and c within %v", time.Since(start).Round(time.Millisecond))
}

// selectionReaches: a selection an admin registers on a, which drops a
// tool, removes the tool from b's /mcp.
func selectionReaches(t *testing.T, c *Cluster) {
	a, b := c.Instances[0], c.Instances[1]
	const dropped = "delete_everything"
	// b lists the tools first, so that a list it kept would show.
	names, err := ToolNames(b.URL+"/mcp", "alice")
	if err != nil || !slices.Contains(names, "wiki_"+dropped) {
		t.Fatalf("b's tools before the selection: %v %v", names, err)
	}
	var wants []map[string]string
	for _, tool := range discover(t, a, "wiki") {
		if tool != dropped {
			wants = append(wants, map[string]string{"name": tool})
		}
	}
	body, _ := json.Marshal(map[string]any{"tools": wants})
	resp := MustSend(t, http.MethodPut, a.Admin+"/mcpgate/connectors/wiki/tools", "", body, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("registering the selection on a: %d %s", resp.Status, resp.Body)
	}
	start := time.Now()
	var last error
	waitFor(t, changeBound, "wiki_"+dropped+" to leave b's /mcp", func() bool {
		names, last = ToolNames(b.URL+"/mcp", "alice")
		return last == nil && !slices.Contains(names, "wiki_"+dropped) && slices.Contains(names, "wiki_echo")
	}, &last)
	t.Logf("the selection registered on a reached b's /mcp in %v (the promise: 2s)", time.Since(start).Round(time.Millisecond))
}

// discover lists the names of connector's tools at its upstream, through
// p's admin API.
func discover(t *testing.T, p *Process, connector string) []string {
	t.Helper()
	resp := MustSend(t, http.MethodGet, p.Admin+"/mcpgate/connectors/"+connector+"/tools?discover=1", "", nil, nil)
	var out struct {
		Discovered []struct {
			Name string `json:"name"`
		} `json:"discovered"`
	}
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &out) != nil || len(out.Discovered) == 0 {
		t.Fatalf("discovering %s's tools at %s: %d %s", connector, p.Name, resp.Status, resp.Body)
	}
	names := make([]string, 0, len(out.Discovered))
	for _, tool := range out.Discovered {
		names = append(names, tool.Name)
	}
	return names
}

// firstConsentsRace: two users' first consents to one connector, at once
// on two instances, use one client, which is the one every later consent
// uses, and both grants work. It returns how many clients the
// authorization server registered, which must be one: the server holds
// each registration for a while, so an instance that registered without
// waiting for the other's lease would leave a second one there.
func firstConsentsRace(t *testing.T, c *Cluster) (registered int) {
	a, b := c.Instances[0], c.Instances[1]
	users := []string{"alice", "bob"}
	starts := []*Process{a, b}
	authURLs := make([]string, len(users))
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() { authURLs[i], errs[i] = Connect(starts[i], users[i], "race") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	st, err := c.RaceAS.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(users))
	for i, u := range authURLs {
		if ids[i], err = ClientID(u); err != nil || ids[i] == "" {
			t.Fatalf("%s's authorization URL names no client: %q %v", users[i], u, err)
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("two first consents at once use clients %q and %q, want one", ids[0], ids[1])
	}
	if later, err := Connect(c.Instances[2], "alice", "race"); err != nil {
		t.Fatal(err)
	} else if id, _ := ClientID(later); id != ids[0] {
		t.Errorf("a later consent through c uses client %q, not %q, the one the race left", id, ids[0])
	}
	// Each comes back through the other instance, and both grants work.
	for i, user := range users {
		if err := Callback(starts[1-i], user, "race", c.Authorize(t, authURLs[i], user)); err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range users {
		if _, err := CallTool(c.Balancer.URL+"/mcp", user, "race_echo", map[string]any{"message": "race " + user}); err != nil {
			t.Errorf("%s after the race: %v", user, err)
		}
	}
	return st.Registrations
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// bound with *last, the error cond saw last, when there is one.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool, last *error) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; the last answer: %v", bound, what, *last)
		}
	}
}
