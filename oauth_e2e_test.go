package mcpgate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// tokenTTL is the access-token lifetime at the test authorization
// servers: short, so that the test sees a token expire and get refreshed.
const tokenTTL = 3 * time.Second

// oauthStack is a real Caddy with mcpgate in front of two OAuth-protected
// MCP upstreams, each behind its own real authorization server
// (oidc-provider): "notes" with per-user consent and "team" with shared
// consent, which only alice, an admin, may give.
type oauthStack struct {
	notes, team     *testupstream.Server
	notesAS, teamAS *testas.AS
	tester          *caddytest.Tester
	config          string
	accessLog       string
	serverLog       string // every Caddy log line, at debug level
	storeDir        string
	sealKey         []byte
}

// startOAuthStack starts the upstreams, their authorization servers and
// Caddy, with the store in a fresh directory.
func startOAuthStack(t testing.TB) *oauthStack {
	t.Helper()
	s := &oauthStack{
		notes: testupstream.StartT(t, testupstream.Options{Name: "notes"}),
		team:  testupstream.StartT(t, testupstream.Options{Name: "team"}),
	}
	s.notesAS = testas.Start(t, testas.Options{Resource: s.notes.URL, AccessTokenTTL: tokenTTL, Accounts: []string{"alice", "bob"}})
	s.teamAS = testas.Start(t, testas.Options{Resource: s.team.URL, Accounts: []string{"alice", "bob"}})
	s.notes.SetGuard(s.notesAS.Protect)
	s.team.SetGuard(s.teamAS.Protect)

	dir := t.TempDir()
	// caddytest leaves the last config running: unload it, closing the
	// store, before the directory that holds the store goes.
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true) })
	s.accessLog = filepath.Join(dir, "access.log")
	s.serverLog = filepath.Join(dir, "caddy.log")
	// A failure on a loaded CI machine is hard to rerun: show what mcpgate
	// logged. The logs hold no secrets (TestOAuthCanarySweep checks).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logged, _ := os.ReadFile(s.serverLog)
		for line := range strings.Lines(string(logged)) {
			if strings.Contains(line, `"logger":"mcpgate`) || strings.Contains(line, `"logger":"http.handlers.mcpgate`) {
				t.Log(strings.TrimSpace(line))
			}
		}
	})
	s.storeDir = filepath.Join(dir, "db")
	s.sealKey = make([]byte, 32)
	_, _ = rand.Read(s.sealKey)
	s.config = fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	default_bind 127.0.0.1
	grace_period 1ns
	log {
		output file %[8]s
		level DEBUG
	}
	mcpgate {
		public_url %[1]s
		storage badger %[2]s
		seal_key %[3]s
		connector notes {
			url %[4]s
			auth oauth {
				insecure_loopback
			}
		}
		connector team {
			url %[5]s
			auth oauth {
				consent shared
				insecure_loopback
			}
		}
		grant {
			src *
			connectors notes team
		}
		grant {
			src user:alice
			role admin
			connectors team
		}
	}
}
%[1]s {
	log {
		output file %[6]s
		format filter {
			request>uri query {
				delete code
				delete state
			}
		}
	}
	handle /connect/client-metadata.json {
		mcpgate
	}
	handle {
		basic_auth {
%[7]s		}
		mcpgate
	}
}
`, site, s.storeDir, base64.StdEncoding.EncodeToString(s.sealKey), s.notes.URL, s.team.URL, s.accessLog, basicAuthUsers(t, passwords), s.serverLog)
	s.tester = sitetest.NewTester(t, 0)
	s.tester.InitServer(s.config, "caddyfile")
	return s
}

// do sends a request to the gateway as user and returns the status and body.
func do(t testing.TB, method, path, user string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, site+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.Header.Set("Authorization", basic(user))
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	responses.add(resp, data)
	return resp, data
}

// responses keeps every answer the gateway gave do, for the canary sweep.
var responses transcript

// transcript is a record of HTTP answers.
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (tr *transcript) add(resp *http.Response, body []byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	_ = resp.Header.Write(&tr.buf)
	tr.buf.Write(body)
	tr.buf.WriteByte('\n')
}

func (tr *transcript) take() []byte {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := bytes.Clone(tr.buf.Bytes())
	tr.buf.Reset()
	return out
}

// connect starts a consent flow for user at connector and returns the
// authorization URL.
func connect(t testing.TB, user, connector string) string {
	t.Helper()
	resp, body := do(t, http.MethodPost, "/connectors/"+connector+"/connect", user, []byte(`{}`),
		http.Header{"Content-Type": {"application/json"}})
	var out struct {
		AuthURL string `json:"auth_url"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AuthURL == "" {
		t.Fatalf("%s connecting %s: %d %s", user, connector, resp.StatusCode, body)
	}
	return out.AuthURL
}

// authorize plays the browser at the authorization server: it logs in as
// account, consents, and returns the callback URL the server redirects
// to, without following it.
func authorize(t testing.TB, authURL, account string) string {
	t.Helper()
	return testas.Authorize(t, authURL, account, site+"/connect/callback?")
}

// consent runs a whole consent flow for user at connector, the way the
// Connectors page would, and checks that it ends on the success page.
func consent(t testing.TB, user, connector string) {
	t.Helper()
	callback := authorize(t, connect(t, user, connector), user)
	resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), user, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Connected "+connector)) {
		t.Fatalf("%s's callback for %s: %d %s", user, connector, resp.StatusCode, body)
	}
}

// echo calls <connector>_echo as user through /mcp.
func echo(t testing.TB, user, connector string) *mcp.CallToolResult {
	t.Helper()
	c := agenttest.Dial(t, site+"/mcp", map[string]string{"Authorization": basic(user)})
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: connector + "_echo", Arguments: map[string]any{"message": "hi " + user},
	}})
	if err != nil {
		t.Fatalf("%s calling %s_echo: %v", user, connector, err)
	}
	return res
}

// storm makes n concurrent stateless calls of tool as user and fails
// unless every one succeeds.
func storm(t *testing.T, n int, user, tool string) {
	t.Helper()
	body, h := statelessCall(tool)
	h.Set("Authorization", basic(user))
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, site+"/mcp", bytes.NewReader(body))
			req.Header = h.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"isError":true`)) || !bytes.Contains(out, []byte(`"result"`)) {
				errs <- fmt.Errorf("%d %s", resp.StatusCode, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent call failed: %v", err)
	}
}

// mustWork fails unless the call succeeded.
func mustWork(t testing.TB, res *mcp.CallToolResult, what string) {
	t.Helper()
	if res.IsError {
		t.Fatalf("%s: tool error %v", what, res.Content)
	}
}

// mustNeedConsent fails unless the call answered with the connect URL.
func mustNeedConsent(t testing.TB, res *mcp.CallToolResult, connector, what string) {
	t.Helper()
	text := ""
	if len(res.Content) > 0 {
		if tc, ok := res.Content[0].(mcp.TextContent); ok {
			text = tc.Text
		}
	}
	if !res.IsError || !strings.Contains(text, site+"/connectors?connect="+connector) {
		t.Fatalf("%s: want a tool error with the connect URL, got %v", what, res.Content)
	}
}

// checkConnectLink follows the connect link of a call that needs consent,
// as the user it was made for and as another: only the first may connect
// there; the other gets 403 and no Connect button (URL mode elicitation,
// "Phishing").
func checkConnectLink(t testing.TB, res *mcp.CallToolResult, owner, other string) {
	t.Helper()
	var out struct {
		URL string `json:"connect_url"`
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if json.Unmarshal(raw, &out) != nil || !strings.Contains(out.URL, "&for=") {
		t.Fatalf("the consent answer's link is not bound to a user: %s", raw)
	}
	path := strings.TrimPrefix(out.URL, site)
	html := http.Header{"Accept": {"text/html"}}
	resp, body := do(t, http.MethodGet, path, owner, nil, html)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "made for another user") || !strings.Contains(string(body), "<button") {
		t.Errorf("%s following their own connect link: %d %s", owner, resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, path, other, nil, html)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "made for another user") || strings.Contains(string(body), "<button") {
		t.Errorf("%s following %s's connect link: %d %s", other, owner, resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, path[:strings.Index(path, "&for=")]+"&for=forged", owner, nil, html)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("%s following a forged connect link: %d %s", owner, resp.StatusCode, body)
	}
}

// statusOf reads one connector's entry in GET /connectors as user.
func statusOf(t testing.TB, user, connector string) map[string]any {
	t.Helper()
	resp, body := do(t, http.MethodGet, "/connectors", user, nil, nil)
	var out struct {
		Connectors []map[string]any `json:"connectors"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET /connectors as %s: %d %s", user, resp.StatusCode, body)
	}
	for _, c := range out.Connectors {
		if c["id"] == connector {
			return c
		}
	}
	t.Fatalf("GET /connectors as %s has no %s: %s", user, connector, body)
	return nil
}

func stats(t testing.TB, as *testas.AS) testas.Stats {
	t.Helper()
	st, err := as.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestOAuthEndToEnd drives the whole OAuth life of a connector through a
// real Caddy against a real authorization server: discovery from the
// upstream's 401, dynamic registration, consent, callback, calls, expiry
// and refresh, a reload, disconnect with revocation seen at the server,
// and reconnect; per-user and shared consent side by side.
func TestOAuthEndToEnd(t *testing.T) {
	s := startOAuthStack(t)

	// Before consent: the call answers with where to consent, a link
	// that only alice may follow.
	mustNeedConsent(t, echo(t, "alice", "notes"), "notes", "alice before consent")
	checkConnectLink(t, echo(t, "alice", "notes"), "alice", "bob")
	if st := statusOf(t, "alice", "notes"); st["status"] != "needs_auth" || !strings.HasPrefix(fmt.Sprint(st["connect_url"]), site+"/connectors?connect=notes&for=") {
		t.Fatalf("alice's notes before consent: %v", st)
	}

	// Consent: discovery, registration, PKCE, callback.
	consent(t, "alice", "notes")
	if st := stats(t, s.notesAS); st.Registrations != 1 || st.TokenRequests["authorization_code"] != 1 {
		t.Fatalf("after alice's consent the server saw %+v", st)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after consent")
	if st := statusOf(t, "alice", "notes"); st["status"] != "ready" || st["state"] != "active" {
		t.Fatalf("alice's notes after consent: %v", st)
	}
	// Per-user consent: bob has not consented, and alice's token is not his.
	mustNeedConsent(t, echo(t, "bob", "notes"), "notes", "bob before his consent")
	consent(t, "bob", "notes")
	mustWork(t, echo(t, "bob", "notes"), "bob after his consent")
	if seen := s.notesAS.Seen(); !slices.Contains(seen, "alice") || !slices.Contains(seen, "bob") {
		t.Fatalf("the upstream saw the subjects %v", seen)
	}
	if st := stats(t, s.notesAS); st.Registrations != 1 {
		t.Fatalf("the client registration was not reused: %+v", st)
	}

	// Expiry, then a storm: 100 concurrent calls on the expired token
	// make one refresh request, and all go through.
	time.Sleep(tokenTTL + 500*time.Millisecond)
	before := stats(t, s.notesAS).TokenRequests["refresh_token"]
	storm(t, 100, "alice", "notes_echo")
	if n := stats(t, s.notesAS).TokenRequests["refresh_token"] - before; n != 1 {
		t.Fatalf("100 calls after expiry made %d refresh requests, want 1", n)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after the refresh")

	// A reload keeps the store open and the tokens. Caddy skips a config
	// that did not change, so this one differs in a detail.
	s.tester.InitServer(strings.Replace(s.config, "grace_period 1ns", "grace_period 2ns", 1), "caddyfile")
	mustWork(t, echo(t, "alice", "notes"), "alice after a reload")

	// Disconnect: purged at once, revoked at the server.
	revocations := stats(t, s.notesAS).Revocations
	resp, body := do(t, http.MethodPost, "/connectors/notes/disconnect", "alice", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"revoked":true`)) {
		t.Fatalf("disconnect: %d %s", resp.StatusCode, body)
	}
	if n := stats(t, s.notesAS).Revocations - revocations; n < 1 {
		t.Fatalf("the server saw %d revocation requests", n)
	}
	mustNeedConsent(t, echo(t, "alice", "notes"), "notes", "alice after disconnect")
	if st := statusOf(t, "alice", "notes"); st["state"] != "disconnected" || st["disconnect_reason"] == nil {
		t.Fatalf("alice's notes after disconnect: %v", st)
	}
	mustWork(t, echo(t, "bob", "notes"), "bob after alice disconnected")

	// Reconnect.
	consent(t, "alice", "notes")
	mustWork(t, echo(t, "alice", "notes"), "alice after reconnecting")

	// Shared consent: only an admin may give it, and then it serves all.
	resp, body = do(t, http.MethodPost, "/connectors/team/connect", "bob", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("only an admin")) {
		t.Fatalf("bob connecting the shared connector: %d %s", resp.StatusCode, body)
	}
	mustNeedConsent(t, echo(t, "bob", "team"), "team", "bob before the shared consent")
	consent(t, "alice", "team")
	mustWork(t, echo(t, "bob", "team"), "bob after alice's shared consent")
	if seen := s.teamAS.Seen(); len(seen) == 0 || slices.ContainsFunc(seen, func(s string) bool { return s != "alice" }) {
		t.Fatalf("the shared connector's upstream saw the subjects %v, want only alice", seen)
	}

	// The access log has the callback without its code and state.
	log, err := os.ReadFile(s.accessLog)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("/connect/callback")) || bytes.Contains(log, []byte("code=")) || bytes.Contains(log, []byte("state=")) {
		t.Fatalf("the access log does not hide the callback's code and state:\n%s", log)
	}
}
