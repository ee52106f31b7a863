package mcpgate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/mcp"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// The observability tests run Caddy on ports of their own, so that they
// never meet the other integration tests' servers.
const (
	obsAdmin = "localhost:2996"
	obsSite  = "http://127.0.0.1:9083"
	// obsCanary is in the arguments of the tool calls: no log line, audit
	// event or database file may hold it.
	obsCanary = "obs-canary-5d1e0b9a"
)

// obsCaddy is a running Caddy for an observability test.
type obsCaddy struct {
	logFile  string // every line Caddy logged, at debug level
	storeDir string
}

// startObsCaddy runs Caddy with the mcpgate global block holding body
// (connectors and grants), the caller named by the X-User header, and
// unloads it when the test ends, closing the store.
func startObsCaddy(t *testing.T, body string) *obsCaddy {
	t.Helper()
	dir := t.TempDir()
	c := &obsCaddy{logFile: filepath.Join(dir, "caddy.log"), storeDir: filepath.Join(dir, "db")}
	// Make sure the admin endpoint listens on our port, in this process,
	// whatever config an earlier test left running.
	if err := caddy.Load([]byte(`{"admin":{"listen":"`+obsAdmin+`"}}`), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"`+obsAdmin+`"}}`), true) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	config := fmt.Sprintf(`{
	admin %s
	http_port 9083
	https_port 9445
	default_bind 127.0.0.1
	grace_period 1ns
	log {
		output file %s
		level DEBUG
	}
	mcpgate {
		public_url %s
		identity {http.request.header.X-User}
		storage badger %s
		seal_key %s
%s
	}
}
%s {
	mcpgate
}
`, obsAdmin, c.logFile, obsSite, c.storeDir, base64.StdEncoding.EncodeToString(key), body, obsSite)
	sitetest.NewTester(t, 2996).InitServer(config, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return c
}

// obsApp returns the running mcpgate app.
func obsApp(t *testing.T) *App {
	t.Helper()
	app, err := caddy.ActiveContext().AppIfConfigured("mcpgate")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*App)
}

// obsDo sends a request to the site as user and returns the status and
// body.
func obsDo(t *testing.T, method, path, user string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, obsSite+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-User", user)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// obsCall calls tool through /mcp as user, with the canary in its
// arguments, and returns the result (nil for a JSON-RPC error).
func obsCall(t *testing.T, user, tool string) *mcp.CallToolResult {
	t.Helper()
	c := agenttest.Dial(t, obsSite+"/mcp", map[string]string{"X-User": user})
	res, err := agenttest.Call(c, tool, map[string]any{"message": "say " + obsCanary})
	if err != nil {
		return nil
	}
	return res
}

// obsMetrics scrapes Caddy's admin endpoint and returns each sample by its
// name and labels, as the text exposition writes them.
func obsMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + obsAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "mcpgate_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// wantMetric fails unless the sample is there with the value.
func wantMetric(t *testing.T, samples map[string]float64, sample string, want float64) {
	t.Helper()
	if got, ok := samples[sample]; !ok || got != want {
		t.Errorf("%s = %v (present: %v), want %v", sample, got, ok, want)
	}
}

// wantIncrease fails unless the counter grew by want since before. The
// counters live as long as the process (a reload keeps them), so a test
// run again sees the counts of the runs before.
func wantIncrease(t *testing.T, before, after map[string]float64, sample string, want float64) {
	t.Helper()
	if got, ok := after[sample]; !ok || got-before[sample] != want {
		t.Errorf("%s went from %v to %v (present: %v), want an increase of %v", sample, before[sample], got, ok, want)
	}
}

// auditEvents queries the running app's audit ring.
func auditEvents(t *testing.T, f audit.Filter) []audit.Event {
	t.Helper()
	events, err := obsApp(t).obs.Query(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// findEvent returns the newest event of kind with outcome, or fails.
func findEvent(t *testing.T, events []audit.Event, kind audit.Kind, outcome string) audit.Event {
	t.Helper()
	i := slices.IndexFunc(events, func(e audit.Event) bool { return e.Kind == kind && e.Outcome == outcome })
	if i < 0 {
		t.Fatalf("no %s event with outcome %s in %+v", kind, outcome, events)
	}
	return events[i]
}

// noCanary fails if anything under dir (the store, the log) holds one of
// the secrets.
func noCanary(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// auditLines returns the mcpgate.audit lines of a Caddy log file, decoded.
func auditLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range bytes.Lines(data) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["logger"] == "mcpgate.audit" {
			out = append(out, m)
		}
	}
	return out
}

// TestObserveToolCalls drives tool calls through a real Caddy to a static
// connector and checks what they leave behind: an audit event for each,
// in the ring (read back through the app, and from the database after
// Caddy let go of it) and as a line in Caddy's log, with the user,
// connector, tool, decision, outcome and duration, and the arguments only
// as a hash; the counts and latencies on Caddy's /metrics; and nowhere
// the canary in the arguments, nor the connector's bearer token.
func TestObserveToolCalls(t *testing.T) {
	const token = "obs-upstream-token-0c4f"
	up := testupstream.StartT(t, testupstream.Options{Name: "obsecho", BearerToken: token})
	t.Setenv("OBS_TOKEN", token)
	c := startObsCaddy(t, fmt.Sprintf(`		connector obsecho {
			url %s
			auth bearer {env.OBS_TOKEN}
		}
		grant {
			src user:alice
			connectors obsecho
		}
		grant {
			src user:bob
			tools obsecho/fail
		}`, up.URL))
	before := obsMetrics(t)

	if res := obsCall(t, "alice", "obsecho_echo"); res == nil || res.IsError {
		t.Fatalf("alice's echo: %+v", res)
	}
	if res := obsCall(t, "alice", "obsecho_fail"); res == nil || !res.IsError {
		t.Fatalf("alice's fail: %+v", res)
	}
	if res := obsCall(t, "bob", "obsecho_echo"); res != nil {
		t.Fatalf("bob's echo, not granted: %+v", res)
	}

	// The ring, through the app: newest first.
	events := auditEvents(t, audit.Filter{Connector: "obsecho"})
	if len(events) != 3 {
		t.Fatalf("audit events: %+v", events)
	}
	denied, failed, ok := events[0], events[1], events[2]
	switch {
	case ok.Kind != audit.KindToolCall || ok.User != "alice" || ok.Tool != "echo" || ok.Decision != audit.DecisionAllow ||
		ok.Outcome != audit.OutcomeOK || ok.Duration <= 0 || len(ok.ArgsHash) != 32:
		t.Errorf("alice's echo: %+v", ok)
	case failed.Tool != "fail" || failed.Outcome != string(mcpmux.OutcomeToolError) || failed.Decision != audit.DecisionAllow:
		t.Errorf("alice's fail: %+v", failed)
	case denied.User != "bob" || denied.Tool != "obsecho_echo" || denied.Decision != audit.DecisionDeny ||
		denied.Outcome != string(mcpmux.OutcomeDenied):
		t.Errorf("bob's echo: %+v", denied)
	case ok.ArgsHash != failed.ArgsHash || ok.ArgsHash != denied.ArgsHash:
		t.Errorf("equal arguments hash differently: %+v", events)
	}
	if raw, _ := json.Marshal(events); bytes.Contains(raw, []byte(obsCanary)) || bytes.Contains(raw, []byte(token)) {
		t.Errorf("an audit event holds a secret: %s", raw)
	}

	// The metrics.
	samples := obsMetrics(t)
	wantIncrease(t, before, samples, `mcpgate_tool_calls_total{connector="obsecho",outcome="ok"}`, 1)
	wantIncrease(t, before, samples, `mcpgate_tool_calls_total{connector="obsecho",outcome="tool_error"}`, 1)
	wantIncrease(t, before, samples, `mcpgate_tool_calls_total{connector="obsecho",outcome="denied"}`, 1)
	key := `mcpgate_upstream_request_duration_seconds_count{connector="obsecho"}`
	if n := samples[key] - before[key]; n < 2 {
		t.Errorf("%v upstream requests to obsecho in the histogram, want at least the two calls that reached it", n)
	}
	if _, ok := samples[`mcpgate_upstream_request_duration_seconds_bucket{connector="obsecho",le="+Inf"}`]; !ok {
		t.Error("the latency histogram has no buckets")
	}
	for sample := range samples {
		if strings.HasPrefix(sample, "mcpgate_connections") {
			t.Errorf("without OAuth connectors, %s", sample)
		}
	}

	// Unloading closes the store: what the ring holds is on disk, and
	// nothing written holds a secret.
	if err := caddy.Load([]byte(`{"admin":{"listen":"`+obsAdmin+`"}}`), true); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(t, c.logFile)
	if len(lines) != 3 || lines[0]["msg"] != "tool call" || lines[0]["user"] != "alice" || lines[0]["connector"] != "obsecho" ||
		lines[0]["tool"] != "echo" || lines[0]["outcome"] != "ok" || lines[0]["decision"] != "allow" ||
		lines[0]["args_hash"] != ok.ArgsHash || lines[0]["duration_ms"] == nil {
		t.Errorf("the audit lines in Caddy's log: %v", lines)
	}
	noCanary(t, filepath.Dir(c.logFile), obsCanary, token)
	db, err := store.OpenBadger(c.storeDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, err := audit.New(audit.Options{Store: db}) // its pages, read as the gateway reads them
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close() // before the store
	if held, err := ring.Query(context.Background(), audit.Filter{}); err != nil || len(held) != 3 {
		t.Fatalf("the ring on disk: %d events, %v", len(held), err)
	}
}

// TestObserveOAuth drives an OAuth connector's life through a real Caddy
// and a real authorization server (oidc-provider) and checks its audit
// events (a call before consent, consent started and finished, the
// disconnect and its revocation) and metrics (the refresh after the
// token expired, the connection's state at each step).
func TestObserveOAuth(t *testing.T) {
	const ttl = 2 * time.Second
	up := testupstream.StartT(t, testupstream.Options{Name: "obsnotes"})
	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: ttl, Accounts: []string{"alice"}})
	up.SetGuard(as.Protect)
	c := startObsCaddy(t, fmt.Sprintf(`		connector obsnotes {
			url %s
			auth oauth {
				insecure_loopback
			}
		}
		grant {
			src user:alice
			connectors obsnotes
		}`, up.URL))
	before := obsMetrics(t)

	if res := obsCall(t, "alice", "obsnotes_echo"); res == nil || !res.IsError {
		t.Fatalf("a call before consent: %+v", res)
	}
	status, body := obsDo(t, http.MethodPost, "/connectors/obsnotes/connect", "alice", []byte(`{}`))
	var start struct {
		AuthURL string `json:"auth_url"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &start) != nil {
		t.Fatalf("connect: %d %s", status, body)
	}
	callback := testas.Authorize(t, start.AuthURL, "alice", obsSite+"/connect/callback?")
	if status, body := obsDo(t, http.MethodGet, strings.TrimPrefix(callback, obsSite), "alice", nil); status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, body)
	}
	samples := obsMetrics(t)
	wantMetric(t, samples, `mcpgate_connections{state="active"}`, 1)
	wantMetric(t, samples, `mcpgate_connections{state="disconnected"}`, 0)

	if res := obsCall(t, "alice", "obsnotes_echo"); res == nil || res.IsError {
		t.Fatalf("a call after consent: %+v", res)
	}
	time.Sleep(ttl + 500*time.Millisecond)
	if res := obsCall(t, "alice", "obsnotes_echo"); res == nil || res.IsError {
		t.Fatalf("a call after the token expired: %+v", res)
	}
	samples = obsMetrics(t)
	wantIncrease(t, before, samples, `mcpgate_token_refreshes_total{connector="obsnotes",outcome="ok"}`, 1)
	wantIncrease(t, before, samples, `mcpgate_tool_calls_total{connector="obsnotes",outcome="needs_auth"}`, 1)
	wantIncrease(t, before, samples, `mcpgate_tool_calls_total{connector="obsnotes",outcome="ok"}`, 2)

	if status, body := obsDo(t, http.MethodPost, "/connectors/obsnotes/disconnect", "alice", nil); status != http.StatusOK {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	samples = obsMetrics(t)
	wantMetric(t, samples, `mcpgate_connections{state="active"}`, 0)
	wantMetric(t, samples, `mcpgate_connections{state="disconnected"}`, 1)

	events := auditEvents(t, audit.Filter{Connector: "obsnotes"})
	needsAuth := findEvent(t, events, audit.KindToolCall, string(mcpmux.OutcomeNeedsAuth))
	if needsAuth.User != "alice" || needsAuth.Decision != "" {
		t.Errorf("the call before consent: %+v", needsAuth)
	}
	for _, e := range []audit.Event{
		findEvent(t, events, audit.KindConsentStart, audit.OutcomeOK),
		findEvent(t, events, audit.KindConsentFinish, audit.OutcomeOK),
		findEvent(t, events, audit.KindDisconnect, audit.OutcomeOK),
		findEvent(t, events, audit.KindRevocation, "revoked"),
	} {
		if e.User != "alice" {
			t.Errorf("%s: %+v", e.Kind, e)
		}
	}
	if slices.ContainsFunc(events, func(e audit.Event) bool { return e.Kind == audit.KindRefreshFailure }) {
		t.Errorf("a refresh that worked was audited as a failure: %+v", events)
	}
	if err := caddy.Load([]byte(`{"admin":{"listen":"`+obsAdmin+`"}}`), true); err != nil {
		t.Fatal(err)
	}
	noCanary(t, filepath.Dir(c.logFile), obsCanary)
}
