package mcpgate_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
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
