package mcpgate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestValidateBesideRunningServer checks that validating a config with
// OAuth connectors leaves the database alone: another process (here, a
// handle the pool does not know) holds its lock, as a running server
// would, and validation still succeeds.
func TestValidateBesideRunningServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	held, err := store.OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cfg := fmt.Sprintf(`{"apps":{"mcpgate":{
		"public_url":"https://mcp.example.com",
		"storage":{"backend":"badger","path":%q},
		"seal_keys":[%q],
		"connectors":[{"id":"notes","url":"https://notes.example.com/mcp","auth":{"type":"oauth"}}]}}}`,
		dir, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	var c caddy.Config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&c); err != nil {
		t.Fatalf("validate beside a held database: %v", err)
	}
}

// TestPublicURLFromJSON checks that public_url given in JSON, which no
// Caddyfile check has seen, is checked as strictly, without echoing a
// password.
func TestPublicURLFromJSON(t *testing.T) {
	for raw, want := range map[string]string{
		"https://u:s3cret@mcp.example.com": "credentials",
		"https://mcp.example.com/?a=b":     "query",
		"https://mcp.example.com/#x":       "fragment",
		"ftp://mcp.example.com":            "scheme",
		"/mcp":                             "scheme",
	} {
		var c caddy.Config
		if err := json.Unmarshal(fmt.Appendf(nil, `{"apps":{"mcpgate":{"public_url":%q}}}`, raw), &c); err != nil {
			t.Fatal(err)
		}
		err := caddy.Validate(&c)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("public_url %q: %v, want an error about its %s", raw, err, want)
		}
	}
}

// TestStorageFromJSON checks the storage settings as JSON gives them,
// which no Caddyfile check has seen: a shared database needs the key ring
// in the config, and each backend takes only its own settings. No error
// shows the DSN, which may hold a password.
func TestStorageFromJSON(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	for _, tc := range []struct{ storage, keys, want string }{
		{`{"backend":"postgres","dsn":"postgres://u:s3cret@db/x"}`, ``, "storage postgres needs seal_key"},
		{`{"backend":"postgres"}`, `"` + key + `"`, "dsn is required"},
		{`{"backend":"postgres","dsn":"{env.MCPGATE_TEST_UNSET_DSN}"}`, `"` + key + `"`, "dsn is required"},
		{`{"backend":"postgres","dsn":"postgres://u:s3cret@db/x","path":"/x"}`, `"` + key + `"`, "storage postgres takes no path"},
		{`{"backend":"badger","dsn":"postgres://u:s3cret@db/x"}`, ``, "storage badger takes no dsn"},
		{`{"backend":"redis"}`, ``, `storage backend "redis" is not supported`},
	} {
		cfg := `{"apps":{"mcpgate":{"storage":` + tc.storage + `,"seal_keys":[` + tc.keys + `]}}}`
		var c caddy.Config
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			t.Fatal(err)
		}
		err := caddy.Validate(&c)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: err = %v, want %q", tc.storage, err, tc.want)
		}
	}
}
