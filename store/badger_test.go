package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestBadgerReload checks reloads over one directory: a second open of a
// directory in use fails clearly (so callers must share one handle across
// reloads), the first handle keeps working, and close and reopen lose
// nothing.
func TestBadgerReload(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "mcpgate")
	first, err := OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Put(ctx, "tokens/a", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}

	second, err := OpenBadger(dir, nil)
	if err == nil {
		second.Close()
		t.Fatal("a second open of a directory in use succeeded")
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
	if got, err := first.Get(ctx, "tokens/a"); string(got) != "a" || err != nil {
		t.Fatalf("first handle after the failed open: %q, %v", got, err)
	}

	for _, key := range []string{"tokens/b", "tokens/c"} {
		for range 2 { // closing twice is harmless
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if first, err = OpenBadger(dir, nil); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if err := first.Put(ctx, key, []byte(key), 0); err != nil {
			t.Fatal(err)
		}
	}
	defer first.Close()
	for _, key := range []string{"tokens/a", "tokens/b", "tokens/c"} {
		if _, err := first.Get(ctx, key); err != nil {
			t.Errorf("%s after two reopens: %v", key, err)
		}
	}
}

func TestBadgerDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "mcpgate")
	openBadger(t, dir)
	for _, d := range []string{dir, filepath.Dir(dir)} {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s has mode %o, want 700", d, perm)
		}
	}
}

func TestBadgerOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		_, err := OpenBadger(dir, nil)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("OpenBadger(%q) = %v, want an error naming the path", dir, err)
		}
	}
}

// TestBadgerLogger: Badger's messages reach zap under the name "badger".
func TestBadgerLogger(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	b, err := OpenBadger(t.TempDir(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if logs.Len() == 0 {
		t.Fatal("no Badger message reached zap")
	}
	for _, e := range logs.All() {
		if e.LoggerName != "badger" || strings.HasSuffix(e.Message, "\n") {
			t.Errorf("entry %q from logger %q", e.Message, e.LoggerName)
		}
	}
}
