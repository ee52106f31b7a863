package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestRecordLayout pins the documented layout.
func TestRecordLayout(t *testing.T) {
	r := testRing(t, 1)
	value := []byte("refresh token")
	blob, err := r.seal("tokens/alice", value)
	if err != nil {
		t.Fatal(err)
	}
	id := r.current().id
	switch {
	case len(blob) != 1+4+60+12+len(value)+16:
		t.Errorf("record is %d bytes", len(blob))
	case blob[0] != 1:
		t.Errorf("version %d", blob[0])
	case !bytes.Equal(blob[1:5], id[:]):
		t.Errorf("key id %x, want %x", blob[1:5], id)
	}
}

// TestBitFlips checks integrity: every bit of every field, flipped, fails to
// open with an error and without a panic.
func TestBitFlips(t *testing.T) {
	// Sealed under the older key, so that rewrap has to unwrap it.
	r := testRing(t, 2, 1)
	const name = "tokens/alice/notion"
	blob, err := testRing(t, 1).seal(name, []byte("access token and refresh token"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		for bit := range 8 {
			bad := bytes.Clone(blob)
			bad[i] ^= 1 << bit
			_, err := r.open(name, bad)
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("byte %d bit %d: open error %v", i, bit, err)
			}
			if _, err := r.rewrap(name, bad, noCount); err == nil && i < 1+idSize+wrappedSize {
				t.Fatalf("byte %d bit %d: rewrap of a damaged header succeeded", i, bit)
			}
		}
	}
}

// TestSealedBitFlips flips one bit per byte of a record at rest: each Get
// fails with an error naming the key and not the content, and the other
// records still open.
func TestSealedBitFlips(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	s := Seal(inner, testRing(t, 1))
	const secret = "CANARY-refresh-token"
	if err := s.Put(ctx, "tokens/alice", []byte(secret), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "tokens/bob", []byte("bob's"), 0); err != nil {
		t.Fatal(err)
	}
	blob, _ := inner.Get(ctx, "tokens/alice")
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x10
		inner.Put(ctx, "tokens/alice", bad, 0)
		_, err := s.Get(ctx, "tokens/alice")
		if err == nil || !strings.Contains(err.Error(), `"tokens/alice"`) || strings.Contains(err.Error(), secret) {
			t.Fatalf("byte %d: Get error %v", i, err)
		}
		if got, err := s.Get(ctx, "tokens/bob"); err != nil || string(got) != "bob's" {
			t.Fatalf("byte %d: another record = %q, %v", i, got, err)
		}
	}
}

// TestMovedRecord checks that the record id is bound as additional data,
// so a copy under another key does not open.
func TestMovedRecord(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	s := Seal(inner, testRing(t, 1))
	s.Put(ctx, "tokens/alice/notion", []byte("alice's token"), 0)
	s.Put(ctx, "tokens/bob/notion", []byte("bob's token"), 0)
	s.Put(ctx, "clients/notion", []byte("client secret"), 0)
	alice, _ := inner.Get(ctx, "tokens/alice/notion")
	for _, to := range []string{"tokens/bob/notion", "tokens/alice/github", "clients/notion", "tokens/alice/notion "} {
		inner.Put(ctx, to, alice, 0)
		if got, err := s.Get(ctx, to); !errors.Is(err, ErrTampered) {
			t.Errorf("record moved to %q opened: %q, %v", to, got, err)
		}
	}
}

// TestShortBlobs checks that short, truncated and unknown records fail to
// open with an error, never an out-of-range panic.
func TestShortBlobs(t *testing.T) {
	r := testRing(t, 1)
	blob, _ := r.seal("k", []byte("value"))
	tests := map[string][]byte{
		"0 bytes":       {},
		"1 byte":        {1},
		"4 bytes":       blob[:4],
		"12 bytes":      blob[:12],
		"27 bytes":      blob[:27],
		"header only":   blob[:headerSize],
		"truncated tag": blob[:len(blob)-1],
		"no value":      blob[:minRecordSize],
		"version 0":     append([]byte{0}, blob[1:]...),
		"version 2":     append([]byte{2}, blob[1:]...),
		"extra byte":    append(bytes.Clone(blob), 0),
		"zero data key": append(bytes.Clone(blob[:5]), make([]byte, len(blob)-5)...),
	}
	for name, bad := range tests {
		if _, err := r.open("k", bad); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: open error %v, want ErrTampered", name, err)
		}
	}
	zeros := append([]byte{1}, make([]byte, len(blob)-1)...)
	if _, err := r.open("k", zeros); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("zeros after version 1: open error %v, want ErrUnknownKey", err)
	}
	for n := range blob {
		if _, err := r.open("k", blob[:n]); err == nil {
			t.Errorf("a record truncated to %d bytes opened", n)
		}
	}
}

func TestUnknownKey(t *testing.T) {
	r1, r2 := testRing(t, 1), testRing(t, 2)
	blob, _ := r1.seal("k", []byte("value"))
	_, err := r2.open("k", blob)
	id := r1.current().id
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), fmt.Sprintf("%x", id[:])) {
		t.Fatalf("open under another ring: %v", err)
	}
	// A ring that has the key id but not the key: the wrap does not open.
	forged := testRing(t, 2)
	forged.keys[0].id = id
	if _, err := forged.open("k", blob); !errors.Is(err, ErrTampered) {
		t.Fatalf("open with a forged key id: %v", err)
	}
}

// TestUnique checks that sealing one plaintext many times never repeats
// a nonce, a data key or a ciphertext.
func TestUnique(t *testing.T) {
	r := testRing(t, 1)
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	seen := map[string]map[string]bool{}
	note := func(kind string, b []byte) {
		if seen[kind] == nil {
			seen[kind] = make(map[string]bool, n)
		}
		if seen[kind][string(b)] {
			t.Fatalf("repeated %s %x", kind, b)
		}
		seen[kind][string(b)] = true
	}
	for range n {
		blob, err := r.seal("k", []byte("the same plaintext"))
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := parseRecord(blob)
		dek, err := r.unwrap(rec, "k")
		if err != nil {
			t.Fatal(err)
		}
		note("wrap nonce", rec.wrapped[:nonceSize])
		note("wrapped key", rec.wrapped)
		note("data key", dek)
		note("nonce", rec.nonce)
		note("ciphertext", rec.data)
	}
}

// FuzzOpen feeds the record decoder random blobs. None may panic, and one
// that opens must be a record Seal produced for that very id.
func FuzzOpen(f *testing.F) {
	old := deterministic(testRing(f, 2))
	r := deterministic(testRing(f, 1, 2))
	sealed := map[string]string{} // id + NUL + blob -> value
	for i, name := range []string{"k", "tokens/alice/notion", "mcpgate/keycheck"} {
		value := strings.Repeat("v", i*20)
		for _, ring := range []*Ring{r, old} {
			blob, err := ring.seal(name, []byte(value))
			if err != nil {
				f.Fatal(err)
			}
			sealed[name+"\x00"+string(blob)] = value
			f.Add(name, blob)
		}
	}
	for _, n := range []int{0, 1, 4, 12, 27, minRecordSize} {
		f.Add("k", make([]byte, n))
	}
	f.Fuzz(func(t *testing.T, name string, blob []byte) {
		value, err := r.open(name, blob)
		if err == nil {
			want, ok := sealed[name+"\x00"+string(blob)]
			if !ok || string(value) != want {
				t.Fatalf("a blob Seal did not produce for %q opened to %q", name, value)
			}
		} else if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("open error %v wraps neither ErrTampered nor ErrUnknownKey", err)
		}
		fresh, rerr := r.rewrap(name, blob, noCount)
		if rerr != nil || fresh == nil {
			return
		}
		again, err2 := r.open(name, fresh)
		if (err == nil) != (err2 == nil) || !bytes.Equal(value, again) {
			t.Fatalf("rewrap changed the outcome: %q, %v before; %q, %v after", value, err, again, err2)
		}
	})
}
