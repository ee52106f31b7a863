package mcpgate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/mcp"

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
	var out []string
	for _, k := range keys {
		v, err := sealed.Get(ctx, k)
		if err != nil {
			t.Fatalf("record %s: %v", k, err)
		}
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
