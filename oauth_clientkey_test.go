package mcpgate_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestClientKeyCanary: a runtime connector added through the admin API
// with a private_key_jwt client (RFC 7523) consents, calls and refreshes
// through a real Caddy and a real authorization server, which holds only
// the public key. The key is stored sealed with the connector, and no
// line of it is in the admin API's answers, the gateway's answers, the
// logs at debug level, the autosaved config or the database files.
func TestClientKeyCanary(t *testing.T) {
	s := startOAuthStack(t)
	responses.take()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	up := testupstream.StartT(t, testupstream.Options{Name: "partner"})
	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: tokenTTL, KeyClients: []testas.KeyClient{
		{ID: "mcpgate-partner", RedirectURI: site + "/connect/callback", Key: k.Public(), KeyID: "k1"},
	}})
	up.SetGuard(as.Protect)

	body, _ := json.Marshal(map[string]any{"id": "partner", "url": up.URL, "auth": map[string]any{"type": "oauth", "oauth": map[string]any{
		"client_id": "mcpgate-partner", "client_key": key, "client_key_id": "k1", "consent": "shared", "insecure_loopback": true}}})
	var answers bytes.Buffer
	added := mustAdmin(t, 201, "POST", "/mcpgate/connectors", string(body))
	authURL, _ := added["auth_url"].(string)
	if authURL == "" {
		t.Fatalf("the added connector has no auth_url: %v", added)
	}
	consentShared(t, authURL)
	mustAdmin(t, 201, "POST", "/mcpgate/grants", `{"src":["*"],"connectors":["partner"],"reason":"the key canary"}`)
	callRaw(t, "alice", "partner_echo")
	time.Sleep(tokenTTL + 500*time.Millisecond) // a refresh, with a new assertion
	callRaw(t, "bob", "partner_echo")
	if st, err := as.Stats(context.Background()); err != nil || st.TokenRequests["refresh_token"] == 0 || st.Registrations != 0 {
		t.Fatalf("the authorization server saw %+v, %v; want a refresh and no registration", st, err)
	}
	shown := mustAdmin(t, 200, "GET", "/mcpgate/connectors/partner", "")
	client, _ := shown["details"].(map[string]any)["oauth"].(map[string]any)["client"].(map[string]any)
	if client["key_stored"] != true || client["token_auth_method"] != "private_key_jwt" || client["secret_stored"] != false {
		t.Fatalf("the connector's client is shown as %v", client)
	}
	for _, path := range []string{"/mcpgate/connectors/partner", "/mcpgate/connectors", "/mcpgate/connectors/partner/diagnose"} {
		_, out := admin(t, http.MethodGet, path, "")
		b, _ := json.Marshal(out)
		answers.Write(b)
	}
	b, _ := json.Marshal(added)
	answers.Write(b)
	resp, err := http.Get("http://localhost:2999/config/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = answers.ReadFrom(resp.Body)
	resp.Body.Close()
	answered := responses.take()

	if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true); err != nil {
		t.Fatal(err)
	}
	if !sealedHolds(t, s, "mcpgate-partner") {
		t.Fatal("the store holds no sealed record of the connector's client")
	}
	places := map[string][]byte{"the admin API's answers": answers.Bytes(), "the gateway's answers": answered}
	for name, path := range map[string]string{"Caddy's log": s.serverLog, "the access log": s.accessLog, "the autosaved config": caddy.ConfigAutosavePath} {
		places[name], _ = os.ReadFile(path)
	}
	_ = filepath.WalkDir(s.storeDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			places["database file "+d.Name()], _ = os.ReadFile(path)
		}
		return nil
	})
	lines := strings.Split(strings.TrimSpace(key), "\n")
	for _, line := range lines[1 : len(lines)-1] {
		for name, data := range places {
			if bytes.Contains(data, []byte(line)) {
				t.Errorf("%s holds a line of the client key", name)
			}
		}
	}
}

// sealedHolds reports whether a record of the closed store, unsealed,
// holds the key (with its line breaks as JSON writes them) and names
// clientID.
func sealedHolds(t *testing.T, s *oauthStack, clientID string) bool {
	t.Helper()
	for _, v := range storedRecords(t, s) {
		if bytes.Contains(v, []byte(clientID)) && bytes.Contains(v, []byte(`"client_key":"-----BEGIN PRIVATE KEY-----\n`)) {
			return true
		}
	}
	return false
}
