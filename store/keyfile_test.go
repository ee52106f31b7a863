package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedSealKey checks the key mcpgate makes when no seal_key is
// configured: 32 bytes in a file only the owner can read, the same on
// every start, and a damaged file is an error rather than a new key,
// which would lock every stored record away.
func TestGeneratedSealKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "mcpgate-seal.key")
	first, err := LoadOrCreateKey(path)
	if err != nil || len(first) != 32 {
		t.Fatalf("first start: %d bytes, %v", len(first), err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v, %v", info.Mode(), err)
	}
	again, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second start gave another key (%v)", err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a damaged key file: %v", err)
	}
}
