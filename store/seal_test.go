package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestCiphertextAtRest checks that no canary value reaches a file of the
// Badger directory in the clear. A plain Badger beside it shows that the
// scan would see one.
func TestCiphertextAtRest(t *testing.T) {
	ctx := context.Background()
	canary := "mcpgate-canary-" + hex.EncodeToString(randomBytes(t, 8))
	sealedDir, plainDir := t.TempDir(), t.TempDir()
	for dir, wrap := range map[string]func(Store) Store{
		sealedDir: func(b Store) Store { return Seal(b, testRing(t, 1)) },
		plainDir:  func(b Store) Store { return b },
	} {
		b, err := OpenBadger(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := wrap(b)
		for i := range 100 {
			if err := s.Put(ctx, fmt.Sprintf("tokens/%d", i), fmt.Appendf(nil, "%s-%d", canary, i), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if hits := scanDir(t, plainDir, canary); len(hits) == 0 {
		t.Fatal("the scan finds no canary even in a plain Badger")
	}
	if hits := scanDir(t, sealedDir, canary); len(hits) > 0 {
		t.Fatalf("canary in the clear in %q", hits)
	}
}

// scanDir returns the files under dir that contain needle.
func scanDir(t *testing.T, dir, needle string) []string {
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if bytes.Contains(data, []byte(needle)) {
			hits = append(hits, filepath.Base(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRotation checks key rotation: records sealed under k1 stay readable
// with [k2 k1], new ones are sealed under k2, Rewrap moves the old ones to
// k2 without touching their ciphertext or expiry, and then [k2] alone opens
// everything.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const n = 20
	b, err := OpenBadger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1 := Seal(b, testRing(t, 1))
	if err := s1.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ttl := time.Duration(0)
		if i == 0 {
			ttl = time.Hour
		}
		if err := s1.Put(ctx, fmt.Sprintf("tokens/%02d", i), fmt.Appendf(nil, "value %d", i), ttl); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	b = openBadger(t, dir)
	s21 := Seal(b, testRing(t, 2, 1))
	if err := s21.Check(ctx); err != nil {
		t.Fatal(err)
	}
	checkValues(t, s21, n)
	if err := s21.Put(ctx, "tokens/new", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if got := rawKeyID(t, b, "tokens/new"); got != idOf(testKey(2)) {
		t.Errorf("a new record is sealed under key id %x, want k2's", got)
	}

	s2 := Seal(b, testRing(t, 2))
	lost, err := s2.Unopenable(ctx)
	if err != nil || len(lost) != n+1 || lost[0] != keyCheckKey {
		t.Fatalf("before the rewrap, [k2] alone cannot open %q, %v; want the %d old records", lost, err, n+1)
	}
	if err := s2.Check(ctx); err == nil || !strings.Contains(err.Error(), "cannot open existing records") {
		t.Fatalf("Check with [k2] before the rewrap: %v", err)
	}

	before := rawRecords(t, b)
	expiry := expiresAtOf(t, b, "tokens/00")
	if got, err := s21.Rewrap(ctx); got != n+1 || err != nil {
		t.Fatalf("Rewrap = %d, %v; want %d (the records and the key check)", got, err, n+1)
	}
	for key, old := range before {
		now := rawRecords(t, b)[key]
		if !bytes.Equal(old[headerSize-nonceSize:], now[headerSize-nonceSize:]) {
			t.Errorf("%s: the value's nonce or ciphertext changed", key)
		}
	}
	if got := expiresAtOf(t, b, "tokens/00"); got != expiry || got == 0 {
		t.Errorf("expiry after rewrap %d, want %d", got, expiry)
	}
	if got, err := s21.Rewrap(ctx); got != 0 || err != nil {
		t.Errorf("second Rewrap = %d, %v", got, err)
	}

	if lost, err := s2.Unopenable(ctx); len(lost) != 0 || err != nil {
		t.Errorf("after the rewrap [k2] cannot open %q, %v", lost, err)
	}
	if err := s2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	checkValues(t, s2, n)
}

func checkValues(t *testing.T, s Store, n int) {
	t.Helper()
	for i := range n {
		got, err := s.Get(context.Background(), fmt.Sprintf("tokens/%02d", i))
		if want := fmt.Sprintf("value %d", i); err != nil || string(got) != want {
			t.Fatalf("record %d = %q, %v; want %q", i, got, err, want)
		}
	}
}

func rawKeyID(t *testing.T, s Store, key string) keyID {
	blob, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := parseRecord(blob)
	if err != nil {
		t.Fatal(err)
	}
	return rec.id
}

// rawRecords returns the sealed records of s, as stored; the wrap counts,
// which are not sealed, are left out.
func rawRecords(t *testing.T, s Store) map[string][]byte {
	ctx := context.Background()
	keys, _ := s.List(ctx, "")
	out := map[string][]byte{}
	for _, key := range slices.DeleteFunc(keys, isClear) {
		blob, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		out[key] = blob
	}
	return out
}

func expiresAtOf(t *testing.T, b *Badger, key string) uint64 {
	var at uint64
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(key))
		if err == nil {
			at = item.ExpiresAt()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestRewrapKeepsNewerValue holds Rewrap between its read and its swap
// while a newer value is written: the swap must not undo the write.
func TestRewrapKeepsNewerValue(t *testing.T) {
	for name, inner := range map[string]Store{"memory": NewMemory(), "badger": openBadger(t, t.TempDir())} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s1, s21 := Seal(inner, testRing(t, 1)), Seal(inner, testRing(t, 2, 1))
			keys := []string{"tokens/a", "tokens/b", "tokens/c"}
			for _, key := range keys {
				s1.Put(ctx, key, []byte("stale"), 0)
			}
			s21.beforeSwap = func(key string) {
				if err := s21.Put(ctx, key, []byte("newer"), 0); err != nil {
					t.Error(err)
				}
			}
			if n, err := s21.Rewrap(ctx); n != 0 || err != nil {
				t.Errorf("Rewrap = %d, %v; want 0 (every record changed under it)", n, err)
			}
			for _, key := range keys {
				if got, err := s21.Get(ctx, key); string(got) != "newer" || err != nil {
					t.Errorf("%s = %q, %v; want newer", key, got, err)
				}
			}
		})
	}
}

// TestRewrapConcurrent runs Rewrap while writers update every record: the
// last value each writer wrote survives and Rewrap reports no error. The
// window it races for is narrow; TestRewrapKeepsNewerValue holds it open.
func TestRewrapConcurrent(t *testing.T) {
	ctx := context.Background()
	b := openBadger(t, t.TempDir())
	s1, s21 := Seal(b, testRing(t, 1)), Seal(b, testRing(t, 2, 1))
	const records, versions = 8, 10
	for round := range 5 {
		for i := range records {
			s1.Put(ctx, fmt.Sprintf("tokens/%d", i), []byte("v0"), 0)
		}
		var wg sync.WaitGroup
		for i := range records {
			wg.Go(func() {
				for v := 1; v <= versions; v++ {
					if err := s21.Put(ctx, fmt.Sprintf("tokens/%d", i), fmt.Appendf(nil, "v%d", v), 0); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Go(func() {
			if _, err := s21.Rewrap(ctx); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		for i := range records {
			if got, err := s21.Get(ctx, fmt.Sprintf("tokens/%d", i)); string(got) != fmt.Sprintf("v%d", versions) || err != nil {
				t.Fatalf("round %d: record %d = %q, %v", round, i, got, err)
			}
		}
	}
}

// TestCheck checks a start with the wrong keys: a ring that cannot open the
// key check is an error, and nothing is overwritten.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	a, b := Seal(inner, testRing(t, 1)), Seal(inner, testRing(t, 2))
	for range 2 {
		if err := a.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := inner.Get(ctx, keyCheckKey)
	err := b.Check(ctx)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "the configured seal keys cannot open existing records") {
		t.Fatalf("Check with another ring: %v", err)
	}
	if after, _ := inner.Get(ctx, keyCheckKey); !bytes.Equal(before, after) {
		t.Fatal("a failed Check rewrote the key check")
	}

	// A store without a key check but with records under an unknown key
	// (and that key's wrap count).
	inner = NewMemory()
	Seal(inner, testRing(t, 1)).Put(ctx, "tokens/a", []byte("v"), 0)
	keys, _ := inner.List(ctx, "")
	if err := Seal(inner, testRing(t, 2)).Check(ctx); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Check over records it cannot open: %v", err)
	}
	if after, _ := inner.List(ctx, ""); !slices.Equal(after, keys) || len(keys) != 2 {
		t.Fatalf("a failed Check wrote: %q, had %q", after, keys)
	}
}

func BenchmarkSealedGet(b *testing.B) {
	ctx := context.Background()
	s := Seal(openBadger(b, b.TempDir()), testRing(b, 1))
	value := randomBytes(b, 256)
	if err := s.Put(ctx, "tokens/alice/notion", value, 0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Get(ctx, "tokens/alice/notion"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealedPut(b *testing.B) {
	ctx := context.Background()
	s := Seal(openBadger(b, b.TempDir()), testRing(b, 1))
	value := randomBytes(b, 256)
	for b.Loop() {
		if err := s.Put(ctx, "tokens/alice/notion", value, 0); err != nil {
			b.Fatal(err)
		}
	}
}
