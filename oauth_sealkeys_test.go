package mcpgate_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// loadConfig posts a Caddyfile to the admin API and returns the status
// and body, without failing the test on an error: some configs here must
// be refused.
func loadConfig(t *testing.T, caddyfile string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://localhost:2999/load", "text/caddyfile", strings.NewReader(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestSealKeyRotation checks the key ring through Caddy: a config whose
// ring cannot open the stored records is refused while the old one keeps
// serving; a new key put first seals new records and rewraps the old
// ones, so that the old key can then leave the ring.
func TestSealKeyRotation(t *testing.T) {
	s := startOAuthStack(t)
	consent(t, "alice", "notes")
	mustWork(t, echo(t, "alice", "notes"), "alice after consent")

	// caddy validate works beside the running server: it never opens the
	// database that the server holds.
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(s.config), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validating the running config: %v", err)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after a validate")

	oldKey := base64.StdEncoding.EncodeToString(s.sealKey)
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	newKey := base64.StdEncoding.EncodeToString(fresh)
	withRing := func(keys ...string) string {
		return strings.Replace(s.config, "seal_key "+oldKey, "seal_key "+strings.Join(keys, "\n\t\tseal_key "), 1)
	}

	// The wrong key: refused, and nothing is lost or reset.
	status, body := loadConfig(t, withRing(newKey))
	if status == http.StatusOK || !strings.Contains(body, "seal") {
		t.Fatalf("a ring without the sealing key was accepted: %d %s", status, body)
	}
	if strings.Contains(body, newKey) || strings.Contains(body, oldKey) {
		t.Fatalf("the refusal names a key: %s", body)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after the refused config")

	// The new key first, the old one still in the ring: everything opens,
	// and the records move onto the new key in the background.
	if status, body := loadConfig(t, withRing(newKey, oldKey)); status != http.StatusOK {
		t.Fatalf("rotating in a new key: %d %s", status, body)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice after rotating")

	// Once rewrapped, the old key can go.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := loadConfig(t, withRing(newKey))
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old key never became unneeded: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustWork(t, echo(t, "alice", "notes"), "alice with only the new key")
	consent(t, "bob", "notes")
	mustWork(t, echo(t, "bob", "notes"), "bob, sealed under the new key")
}

// TestSealKeyRotationEveryRecord writes one record of every kind mcpgate
// stores, rotates the seal key, and then opens the database itself: every
// record outside the clear prefix opens with the new key alone, and none
// is left on the old one. A kind stored outside the key ring's reach (tool
// selections once were: plain JSON under tools/) stops the rewrap.
func TestSealKeyRotationEveryRecord(t *testing.T) {
	s := startOAuthStack(t)
	// Team's revocation endpoint is a closed port, so that its disconnect
	// leaves a tombstone to retry. A grant keeps the endpoint it was made
	// with: this comes before the consent.
	config := strings.Replace(s.config, "consent shared\n\t\t\t\tinsecure_loopback",
		"consent shared\n\t\t\t\tinsecure_loopback\n\t\t\t\trevocation_endpoint http://127.0.0.1:1/revoke", 1)
	if config == s.config {
		t.Fatal("the stack's config no longer has team's auth block as this test expects")
	}
	if status, body := loadConfig(t, config); status != http.StatusOK {
		t.Fatalf("pointing team's revocation at a closed port: %d %s", status, body)
	}
	// One record of each kind: a per-user grant and notes' DCR client; a
	// shared grant and team's client; a pending consent flow; a tool
	// selection with its pins; a runtime connector. The audit ring and the
	// wrap counts fill as they go.
	consent(t, "alice", "notes")
	consent(t, "alice", "team")
	_ = connect(t, "bob", "notes")
	mustAdmin(t, 200, "PUT", "/mcpgate/connectors/team/tools", `{"tools":[{"name":"echo","operation":"read"}]}`)
	mustAdmin(t, 201, "POST", "/mcpgate/connectors", `{"id":"billing","api":"http://127.0.0.1:1/v1","auth":{"type":"bearer","token":"api-token"}}`)
	if resp, body := do(t, http.MethodPost, "/connectors/team/disconnect", "alice", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"revoked":false`) {
		t.Fatalf("disconnecting team with its revocation endpoint down: %d %s", resp.StatusCode, body)
	}

	oldKey := base64.StdEncoding.EncodeToString(s.sealKey)
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	rotated := strings.Replace(config, "seal_key "+oldKey, "seal_key "+base64.StdEncoding.EncodeToString(fresh)+"\n\t\tseal_key "+oldKey, 1)
	if status, body := loadConfig(t, rotated); status != http.StatusOK {
		t.Fatalf("rotating in a new key: %d %s", status, body)
	}
	waitForLog(t, s.serverLog, "stored records under the first seal key")
	if logged, _ := os.ReadFile(s.serverLog); strings.Contains(string(logged), "rewrapping stored records under the first seal key") {
		t.Fatalf("the rewrap failed: %s", lineWith(string(logged), "rewrapping stored records"))
	}

	// Unload, so that the database can be opened here.
	if err := caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true); err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenBadger(s.storeDir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newRing, err := store.NewRing([][]byte{fresh})
	if err != nil {
		t.Fatal(err)
	}
	oldRing, err := store.NewRing([][]byte{s.sealKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys, err := db.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, key := range keys {
		kinds[recordKind(key)]++
		if strings.HasPrefix(key, store.ClearPrefix) {
			continue
		}
		if _, err := store.Seal(db, newRing).Get(ctx, key); err != nil {
			t.Errorf("record %q does not open with the new key: %v", key, err)
		}
		if _, err := store.Seal(db, oldRing).Get(ctx, key); err == nil {
			t.Errorf("record %q still opens with the old key alone", key)
		}
	}
	for _, kind := range []string{"oauth/clients/", "oauth/grants/", "oauth/flows/", "oauth/revoke/", "runtime/connectors/", "tools/", "clear/wraps/", "clear/audit/"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s record was written, so the rotation of that kind went untested (kinds seen: %v)", kind, kinds)
		}
	}
}

// recordKind is a store key's prefix up to its last-but-one segment: the
// kind of record it holds.
func recordKind(key string) string {
	for _, prefix := range []string{"oauth/clients/", "oauth/grants/", "oauth/flows/", "oauth/revoke/", "runtime/connectors/", "tools/", "clear/wraps/", "clear/audit/"} {
		if strings.HasPrefix(key, prefix) {
			return prefix
		}
	}
	return key
}

// waitForLog waits until the log file holds a line with text.
func waitForLog(t *testing.T, path, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		logged, _ := os.ReadFile(path)
		if strings.Contains(string(logged), text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged %q", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lineWith returns the first line of text that holds substr.
func lineWith(text, substr string) string {
	for line := range strings.Lines(text) {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}
