package mcpgate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestGenerationsShareGrantLocks checks the wiring that a disconnect
// relies on to reach every config generation at once: two generations
// on one database share one oauthflow.Locks, through which a change of a
// grant by either one's Manager makes the other drop its cached token.
func TestGenerationsShareGrantLocks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	raw := fmt.Sprintf(`{"apps":{"mcpgate":{
		"public_url":"https://mcp.example.com",
		"storage":{"backend":"badger","path":%q},
		"seal_keys":[%q],
		"connectors":[{"id":"notes","url":"https://notes.example.com/mcp","auth":{"type":"oauth"}}]}}}`,
		dir, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
	var apps []*App
	for range 2 {
		var cfg caddy.Config
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			t.Fatal(err)
		}
		ctx, err := caddy.ProvisionContext(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		app, err := ctx.App("mcpgate")
		if err != nil {
			t.Fatal(err)
		}
		a := app.(*App)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Stop(); _ = a.Cleanup() })
		apps = append(apps, a)
	}
	if apps[0].vault.locks == nil || apps[0].vault.locks != apps[1].vault.locks {
		t.Fatal("two generations on one database do not share their grant locks")
	}
	for i, a := range apps {
		if g := a.live.Current(); g == nil || g.Manager() == nil {
			t.Fatalf("generation %d has no OAuth manager", i)
		}
	}
}
