package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/caddy-mcpgate"
)

// adaptedApp adapts a Caddyfile as `caddy run --adapter caddyfile` does
// and returns its mcpgate app's JSON.
func adaptedApp(t *testing.T, caddyfile string) map[string]any {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting:\n%s\n%v", caddyfile, err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapting:\n%s\nwarnings %v", caddyfile, warnings)
	}
	var cfg struct {
		Apps struct {
			Mcpgate map[string]any `json:"mcpgate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Apps.Mcpgate
}

// TestGatewayCaddyfilePostgres: the mcpgate-postgres target's Caddyfile is
// the mcpgate target's with storage postgres on the DSN and a seal key, and
// the mcpgate target's keeps the default store.
func TestGatewayCaddyfilePostgres(t *testing.T) {
	const (
		dsn = "postgres://postgres@127.0.0.1:5999/postgres?sslmode=disable"
		key = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
		up  = "http://127.0.0.1:5998/mcp"
	)
	badger := gatewayCaddyfile("127.0.0.1:5997", benchIdentity, []string{"bench"}, []string{up}, "")
	pg := gatewayCaddyfile("127.0.0.1:5997", benchIdentity, []string{"bench"}, []string{up}, postgresStorage(dsn, key))

	app := adaptedApp(t, pg)
	storage, _ := app["storage"].(map[string]any)
	if storage["backend"] != "postgres" || storage["dsn"] != dsn {
		t.Errorf("mcpgate-postgres storage = %v, want backend postgres on %s", app["storage"], dsn)
	}
	if keys, _ := app["seal_keys"].([]any); len(keys) != 1 || keys[0] != key {
		t.Errorf("mcpgate-postgres seal_keys = %v, want [%s]", app["seal_keys"], key)
	}
	app = adaptedApp(t, badger)
	if app["storage"] != nil || app["seal_keys"] != nil {
		t.Errorf("mcpgate storage = %v, seal_keys = %v, want the defaults", app["storage"], app["seal_keys"])
	}
	if without := strings.Replace(pg, postgresStorage(dsn, key), "", 1); without != badger {
		t.Errorf("the two Caddyfiles differ in more than the storage:\n%s\n---\n%s", pg, badger)
	}
}
