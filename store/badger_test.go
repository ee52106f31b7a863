package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mcpgate/caddy-mcpgate/internal/liveheap"
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

// TestBadgerRoom: the largest transactions mcpgate makes fit in one Badger
// transaction under badgerOptions' sizes, and values above the value
// threshold round-trip across a reopen. The audit ring's batches cost at
// most 128 KiB as Badger counts them (audit's maxBatchBytes): here 256
// events of 424 bytes with as many deletes, 131,072 bytes. A tool
// selection of a large connector is one value that may pass the
// threshold.
func TestBadgerRoom(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	event := []byte(strings.Repeat("e", 424))
	var writes []Write
	for i := range 256 {
		writes = append(writes, Write{Key: fmt.Sprintf("clear/audit/calls/%014d", i), Value: event})
		writes = append(writes, Write{Key: fmt.Sprintf("clear/audit/calls/%014d", 100000+i), Delete: true})
	}
	if err := b.Batch(ctx, writes); err != nil {
		t.Fatalf("an audit batch of 128 KiB: %v", err)
	}
	big := map[string][]byte{
		"selections/under": bytes.Repeat([]byte{'u'}, badgerValueThreshold-1),
		"selections/at":    bytes.Repeat([]byte{'a'}, badgerValueThreshold),
		"selections/huge":  bytes.Repeat([]byte{'h'}, 3<<20), // above the memtable itself
	}
	writes = writes[:0]
	for k, v := range big {
		writes = append(writes, Write{Key: k, Value: v})
	}
	if err := b.Batch(ctx, writes); err != nil {
		t.Fatalf("a batch of values around the threshold: %v", err)
	}
	if err := b.Put(ctx, "selections/huge", append(big["selections/huge"], 'x'), 0); err != nil {
		t.Fatalf("rewriting a value above the threshold: %v", err)
	}
	big["selections/huge"] = append(big["selections/huge"], 'x')
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBadger(t, dir)
	for k, want := range big {
		if got, err := b.Get(ctx, k); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after reopen: %d bytes, %v; want %d bytes", k, len(got), err, len(want))
		}
	}
	if got, err := b.Get(ctx, "clear/audit/calls/00000000000255"); err != nil || !bytes.Equal(got, event) {
		t.Errorf("the last audit event after reopen: %d bytes, %v", len(got), err)
	}
}

// TestBadgerHeap: an open Badger holds little of the Go heap. Its memtable
// is a slice there, which the collector counts as live and lets the heap
// grow twice over: at Badger's 8 MiB it was 10.4 MB, the largest part of an
// idle gateway's heap; at 2 MiB 2.8 MB, at 1 MiB 1.4.
func TestBadgerHeap(t *testing.T) {
	before := liveheap.Bytes()
	b := openBadger(t, t.TempDir())
	if held := liveheap.Bytes() - before; held > 2<<20 {
		t.Errorf("an open Badger holds %d bytes of live heap, want at most 2 MiB", held)
	}
	runtime.KeepAlive(b)
}
