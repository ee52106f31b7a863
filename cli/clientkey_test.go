package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testClientKey is a PEM P-256 private key.
func testClientKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestCLIClientKey: --client-key - sends the whole PEM key from standard
// input, every line of it, as client_key, with --client-key-id as
// client_key_id; on update, a file name reads the key from the file; and
// nothing the CLI prints holds the key.
func TestCLIClientKey(t *testing.T) {
	f := startFakeAdmin(t)
	key := testClientKey(t)
	sent := f.run(t, key, "connectors", "add", "partner", "--mcp-server-url", "https://mcp.partner.example/mcp",
		"--client-id", "mcpgate-partner", "--client-key", "-", "--client-key-id", "k1", "--token-auth-method", "private_key_jwt")
	oauth := sent.Body.(map[string]any)["auth"].(map[string]any)["oauth"].(map[string]any)
	if oauth["client_key"] != key || oauth["client_key_id"] != "k1" || oauth["token_auth_method"] != "private_key_jwt" || oauth["client_secret"] != nil {
		t.Fatalf("add sent oauth %v", oauth)
	}

	file := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	sent = f.run(t, "", "connectors", "update", "partner", "--client-key", file)
	patch := sent.Body.(map[string]any)["auth"].(map[string]any)["oauth"].(map[string]any)
	if len(patch) != 1 || patch["client_key"] != key {
		t.Fatalf("update sent oauth %v", patch)
	}

	addr := strings.TrimPrefix(f.srv.URL, "http://")
	for _, tc := range []struct{ stdin, value, want string }{
		{"", "-", "standard input held no key"},
		{"", filepath.Join(t.TempDir(), "missing.pem"), "--client-key: open"},
		{strings.Repeat(key, 400), "-", "which is no PEM key"},
	} {
		out, errOut, err := runCLI(t, tc.stdin, "connectors", "add", "partner", "--mcp-server-url", "https://mcp.partner.example/mcp",
			"--client-id", "c", "--client-key", tc.value, "--address", addr)
		if err == nil || !strings.Contains(errOut+err.Error(), tc.want) {
			t.Fatalf("--client-key %s: %v\n%s; want %q", tc.value, err, errOut, tc.want)
		}
		if body := strings.Split(key, "\n")[1]; strings.Contains(out+errOut+err.Error(), body) {
			t.Errorf("--client-key %s: the key was printed", tc.value)
		}
	}
}
