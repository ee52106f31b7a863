//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestEmptyLogs checks the recovery from a start killed while it created
// a log: the empty log is removed and the database opens, but never while
// another handle has the database open.
func TestEmptyLogs(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	empty := []string{filepath.Join(dir, "000099.vlog"), filepath.Join(dir, "00098.mem")}
	for _, p := range empty {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Held open: a second open fails as in use and leaves the files.
	if _, err := OpenBadger(dir, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("a second open: %v", err)
	}
	for _, p := range empty {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s was touched while the database was open: %v", p, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = OpenBadger(dir, nil)
	if err != nil {
		t.Fatalf("opening with empty logs left behind: %v", err)
	}
	defer db.Close()
	for _, p := range empty {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
}
