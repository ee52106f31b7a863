package mcpgate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// statelessCall builds a stateless (2026-07-28) tools/call of tool.
func statelessCall(tool string) ([]byte, http.Header) {
	version := mcp.ProtocolVersion20260728
	params, _ := json.Marshal(map[string]any{
		"name": tool, "arguments": map[string]any{"message": "canary run"},
		"_meta": map[string]any{
			mcp.MetaKeyProtocolVersion:    version,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "sweep", "version": "1"},
			mcp.MetaKeyClientCapabilities: map[string]any{},
		},
	})
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": json.RawMessage(params)})
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"},
		mcp.HeaderProtocolVersion: {version}}
	for k, v := range mcp.StandardHeaders(version, mcp.MCPMethod("tools/call"), params) {
		h.Set(k, v)
	}
	return body, h
}

// callRaw makes one stateless tools/call through do, so that the answer
// lands in the transcript.
func callRaw(t testing.TB, user, tool string) []byte {
	t.Helper()
	body, h := statelessCall(tool)
	resp, out := do(t, http.MethodPost, "/mcp", user, body, h)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s calling %s: %d %s", user, tool, resp.StatusCode, out)
	}
	return out
}

// TestOAuthCanarySweep runs every OAuth flow through a real Caddy, then
// collects every secret those flows made — authorization codes, state
// handles, access and refresh tokens, client secrets and PKCE verifiers,
// read back from the sealed store — and searches everything the gateway
// wrote or answered for them: its logs at debug level, the access log,
// every HTTP answer, the admin API's config, the autosaved config and the
// database files. None may hold one.
func TestOAuthCanarySweep(t *testing.T) {
	s := startOAuthStack(t)
	responses.take()

	// Consent, with the code and state of each callback kept.
	var secrets []string
	flow := func(user, connector string) {
		callback := authorize(t, connect(t, user, connector), user)
		u, err := url.Parse(callback)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, u.Query().Get("code"))
		resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), user, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("callback: %d %s", resp.StatusCode, body)
		}
		// A replayed callback is refused, and says so without the code.
		if resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), user, nil, nil); resp.StatusCode == http.StatusOK {
			t.Fatalf("a replayed callback succeeded: %s", body)
		}
	}
	flow("alice", "notes")
	flow("bob", "notes")
	flow("alice", "team")
	callRaw(t, "alice", "notes_echo")
	callRaw(t, "bob", "team_echo")
	// Expiry and a refresh, so that a rotated refresh token exists.
	time.Sleep(tokenTTL + 500*time.Millisecond)
	callRaw(t, "alice", "notes_echo")
	// Disconnect with revocation, and a flow left pending.
	if resp, body := do(t, http.MethodPost, "/connectors/notes/disconnect", "bob", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d %s", resp.StatusCode, body)
	}
	pending, err := url.Parse(connect(t, "bob", "notes"))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, pending.Query().Get("state"))
	do(t, http.MethodGet, "/connectors", "alice", nil, http.Header{"Accept": {"text/html"}})
	do(t, http.MethodGet, "/connectors", "bob", nil, nil)
	do(t, http.MethodGet, "/connect/client-metadata.json", "", nil, nil)

	// The access tokens the upstreams received.
	for _, r := range append(s.notes.Requests(), s.team.Requests()...) {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			secrets = append(secrets, token)
		}
	}

	// What the admin API and the autosave hold.
	resp, err := http.Get("http://localhost:2999/config/")
	if err != nil {
		t.Fatal(err)
	}
	var config bytes.Buffer
	_, _ = config.ReadFrom(resp.Body)
	resp.Body.Close()
	answered := responses.take()

	// Stop mcpgate so that the database closes, then read every secret
	// back out of it.
	s.tester.InitServer(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	default_bind 127.0.0.1
}
`, "caddyfile")
	secrets = append(secrets, storedSecrets(t, s)...)
	t.Logf("collected %d secrets", len(secrets))
	if len(secrets) < 12 {
		t.Fatalf("only %d secrets were collected; the sweep would prove little", len(secrets))
	}

	places := map[string][]byte{"the admin API's config": config.Bytes(), "the gateway's answers": answered}
	for name, path := range map[string]string{"Caddy's log": s.serverLog, "the access log": s.accessLog, "the autosaved config": caddy.ConfigAutosavePath} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		places[name] = data
	}
	if len(places["Caddy's log"]) == 0 || !bytes.Contains(places["the access log"], []byte("/connect/callback")) {
		t.Fatal("the logs are empty: the sweep would prove nothing")
	}
	_ = filepath.WalkDir(s.storeDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(path)
			places["database file "+d.Name()] = data
		}
		return nil
	})
	for _, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("a collected secret is too short to search for: %d bytes", len(secret))
		}
		for name, data := range places {
			// The connect answer carries its own state in the auth URL,
			// by design: it is the browser's to follow. Anywhere else the
			// state is a leak.
			if name == "the gateway's answers" {
				data = bytes.ReplaceAll(data, []byte("state="+secret), nil)
			}
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds a secret (%d bytes, starting %.4s…)", name, len(secret), secret)
			}
		}
	}
}

// storedSecrets opens the closed database with the test's seal key and
// returns every token, client secret and PKCE verifier in it.
func storedSecrets(t *testing.T, s *oauthStack) []string {
	t.Helper()
	var out []string
	for _, v := range storedRecords(t, s) {
		var rec map[string]any
		if json.Unmarshal(v, &rec) != nil {
			continue
		}
		for name, val := range rec {
			str, ok := val.(string)
			if ok && str != "" && (strings.Contains(name, "token") && name != "token_endpoint" && name != "token_endpoint_auth_method" ||
				name == "client_secret" || name == "verifier") {
				out = append(out, str)
			}
		}
	}
	return out
}

// storedRecords opens the closed database with the test's seal key and
// returns every record in it, unsealed, by key.
func storedRecords(t *testing.T, s *oauthStack) map[string][]byte {
	t.Helper()
	db, err := store.OpenBadger(s.storeDir, nil)
	if err != nil {
		t.Fatalf("reopening the database (is it still open?): %v", err)
	}
	defer db.Close()
	ring, err := store.NewRing([][]byte{s.sealKey})
	if err != nil {
		t.Fatal(err)
	}
	sealed := store.Seal(db, ring)
	ctx := context.Background()
	keys, err := sealed.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		if out[k], err = sealed.Get(ctx, k); err != nil {
			t.Fatalf("record %s: %v", k, err)
		}
	}
	return out
}

// credentialCanaries are the static credentials of TestCredentialCanaryLogs,
// by the environment variable the Caddyfile reads them from: a bearer token
// and an X-Api-Key, each for an HTTP API connector and for an MCP connector.
// Random, so that a hit in a log can only come from the gateway.
var credentialCanaries = map[string]string{
	"MCPGATE_CANARY_API_BEARER": "api-bearer-canary-" + rand.Text(),
	"MCPGATE_CANARY_API_KEY":    "api-key-canary-" + rand.Text(),
	"MCPGATE_CANARY_MCP_BEARER": "mcp-bearer-canary-" + rand.Text(),
	"MCPGATE_CANARY_MCP_KEY":    "mcp-key-canary-" + rand.Text(),
}

// tokenRecorder is an OAuth-protected HTTP API that keeps every bearer token
// it received.
type tokenRecorder struct {
	guarded atomic.Pointer[http.Handler]
	mu      sync.Mutex
	tokens  []string
}

func (tr *tokenRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*tr.guarded.Load()).ServeHTTP(w, r)
}

// inner is the API behind the guard: it keeps the token, and refuses it on
// /v1/refuse so that the gateway refreshes it.
func (tr *tokenRecorder) inner(w http.ResponseWriter, r *http.Request) {
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tr.mu.Lock()
		tr.tokens = append(tr.tokens, token)
		tr.mu.Unlock()
	}
	if r.URL.Path == "/v1/refuse" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "refused", http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, "hello from %s", r.URL.Path)
}

// TestCredentialCanaryLogs gives the gateway one credential of every kind
// for both kinds of connector — a static bearer token, a static X-Api-Key,
// OAuth access and refresh tokens and the client secrets of dynamically
// registered clients — uses each one, successfully and in error paths, with
// Caddy logging everything at debug level, with credentials in logs allowed
// (log_credentials, so that Caddy's own redaction of Authorization hides
// nothing), and with an access log. No log line may hold one of them.
func TestCredentialCanaryLogs(t *testing.T) {
	for name, value := range credentialCanaries {
		t.Setenv(name, value)
	}
	api := startAPIServer(t)
	t.Setenv("MCPGATE_TEST_API", api.URL)
	mcpBearer := testupstream.StartT(t, testupstream.Options{Name: "mcpbearer", BearerToken: credentialCanaries["MCPGATE_CANARY_MCP_BEARER"]})
	mcpKey := testupstream.StartT(t, testupstream.Options{Name: "mcpkey", HeaderName: "X-Api-Key", HeaderValue: credentialCanaries["MCPGATE_CANARY_MCP_KEY"]})
	mcpOAuth := testupstream.StartT(t, testupstream.Options{Name: "mcpoauth"})
	mcpAS := testas.Start(t, testas.Options{Resource: mcpOAuth.URL, Accounts: []string{"alice"}})
	mcpOAuth.SetGuard(mcpAS.Protect)
	oauthAPI := &tokenRecorder{}
	oauthAPIServer := httptest.NewServer(oauthAPI)
	t.Cleanup(oauthAPIServer.Close)
	apiAS := testas.Start(t, testas.Options{Resource: oauthAPIServer.URL + "/v1", Accounts: []string{"alice"}})
	guarded := apiAS.Protect(http.HandlerFunc(oauthAPI.inner))
	oauthAPI.guarded.Store(&guarded)
	// An API that is down, so that the proxy's error path runs with a
	// credential in the request.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	dir := t.TempDir()
	serverLog, accessLog := filepath.Join(dir, "caddy.log"), filepath.Join(dir, "access.log")
	stack := &oauthStack{storeDir: filepath.Join(dir, "db"), sealKey: make([]byte, 32)}
	_, _ = rand.Read(stack.sealKey)
	startAPICaddy(t, fmt.Sprintf(`{
	%[1]s
	log {
		output file %[2]s
		level DEBUG
	}
	servers {
		log_credentials
	}
	mcpgate {
		public_url %[3]s
		storage badger %[4]s
		seal_key %[5]s
		connector apibearer {
			api {env.MCPGATE_TEST_API}/v1
			auth bearer {env.MCPGATE_CANARY_API_BEARER}
		}
		connector apikey {
			api {env.MCPGATE_TEST_API}/v1
			auth header X-Api-Key {env.MCPGATE_CANARY_API_KEY}
		}
		connector apidown {
			api %[6]s/v1
			auth header X-Api-Key {env.MCPGATE_CANARY_API_KEY}
		}
		connector apioauth {
			api %[7]s/v1
			auth oauth {
				insecure_loopback
			}
		}
		connector mcpbearer {
			url %[8]s
			auth bearer {env.MCPGATE_CANARY_MCP_BEARER}
		}
		connector mcpkey {
			url %[9]s
			auth header X-Api-Key {env.MCPGATE_CANARY_MCP_KEY}
		}
		connector mcpoauth {
			url %[10]s
			auth oauth {
				insecure_loopback
			}
		}
		grant {
			src *
			connectors apibearer apikey apidown apioauth mcpbearer mcpkey mcpoauth
		}
	}
}
%[3]s {
	log {
		output file %[11]s
	}
	basic_auth {
%[12]s	}
	mcpgate
}
`, apiGlobals, serverLog, apiSite, stack.storeDir, base64.StdEncoding.EncodeToString(stack.sealKey),
		down.URL, oauthAPIServer.URL, mcpBearer.URL, mcpKey.URL, mcpOAuth.URL, accessLog, basicAuthUsers(t, apiPasswords)))

	expect := func(method, path string, status int, body io.Reader, header http.Header) {
		t.Helper()
		if resp, got := apiDo(t, method, path, "alice", body, header); resp.StatusCode != status {
			t.Errorf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, status)
		}
	}
	// The static credentials of the APIs, in success and in error.
	asJSON := http.Header{"Content-Type": {"application/json"}}
	for _, id := range []string{"apibearer", "apikey"} {
		expect(http.MethodGet, "/connectors/"+id+"/api/users?page=2", http.StatusOK, nil, nil)
		expect(http.MethodPost, "/connectors/"+id+"/api/issues", http.StatusOK, strings.NewReader(`{"title":"canary"}`), asJSON)
		expect(http.MethodGet, "/connectors/"+id+"/api/refuse", http.StatusUnauthorized, nil, nil)
	}
	expect(http.MethodGet, "/connectors/apidown/api/users", http.StatusBadGateway, nil, nil)
	// The static credentials of the MCP servers.
	for _, tool := range []string{"mcpbearer_echo", "mcpkey_echo"} {
		body, h := statelessCall(tool)
		expect(http.MethodPost, "/mcp", http.StatusOK, bytes.NewReader(body), h)
	}
	// OAuth: consent, use, and a refusal that makes the API's token refresh.
	for _, id := range []string{"apioauth", "mcpoauth"} {
		resp, body := apiDo(t, http.MethodPost, "/connectors/"+id+"/connect", "alice", strings.NewReader("{}"), asJSON)
		var started struct {
			AuthURL string `json:"auth_url"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &started) != nil {
			t.Fatalf("connect %s: %d %s", id, resp.StatusCode, body)
		}
		callback := testas.Authorize(t, started.AuthURL, "alice", apiSite+"/connect/callback?")
		expect(http.MethodGet, strings.TrimPrefix(callback, apiSite), http.StatusOK, nil, nil)
	}
	expect(http.MethodGet, "/connectors/apioauth/api/notes", http.StatusOK, nil, nil)
	expect(http.MethodGet, "/connectors/apioauth/api/refuse", http.StatusUnauthorized, nil, nil)
	expect(http.MethodGet, "/connectors/apioauth/api/notes", http.StatusOK, nil, nil)
	body, h := statelessCall("mcpoauth_echo")
	expect(http.MethodPost, "/mcp", http.StatusOK, bytes.NewReader(body), h)

	// Every secret: the static ones, the tokens the upstreams received,
	// and, once Caddy has closed the database, the tokens and client
	// secrets in it.
	var secrets []string
	for _, v := range credentialCanaries {
		secrets = append(secrets, v)
	}
	oauthAPI.mu.Lock()
	secrets = append(secrets, oauthAPI.tokens...)
	oauthAPI.mu.Unlock()
	for _, r := range mcpOAuth.Requests() {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			secrets = append(secrets, token)
		}
	}
	if err := stopAPICaddy(); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, storedSecrets(t, stack)...)
	t.Logf("collected %d secrets", len(secrets))
	if len(secrets) < 10 {
		t.Fatalf("only %d secrets were collected; the sweep would prove little", len(secrets))
	}

	logs := map[string][]byte{}
	for name, path := range map[string]string{"Caddy's log": serverLog, "the access log": accessLog} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		logs[name] = data
	}
	// The logs must have seen the requests, with their headers, or the
	// sweep proves nothing.
	for _, want := range []struct{ log, text string }{
		{"Caddy's log", `"msg":"upstream roundtrip","upstream":"` + strings.TrimPrefix(api.URL, "http://")},
		{"the access log", `"uri":"/connectors/apikey/api/users?page=2"`},
		{"the access log", `"Authorization":["Basic `},
	} {
		if !bytes.Contains(logs[want.log], []byte(want.text)) {
			t.Fatalf("%s lacks %s: the sweep would prove nothing", want.log, want.text)
		}
	}
	for _, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("a collected secret is too short to search for: %d bytes", len(secret))
		}
		for name, data := range logs {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds a secret (%d bytes, starting %.4s…)", name, len(secret), secret)
			}
		}
	}
}
