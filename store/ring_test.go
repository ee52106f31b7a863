package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/hkdf"
)

func TestNewRing(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
		want string // error substring; "" for success
	}{
		{"one key", [][]byte{testKey(1)}, ""},
		{"three keys", [][]byte{testKey(1), testKey(2), testKey(3)}, ""},
		{"none", nil, "seal keys: none given"},
		{"short", [][]byte{testKey(1), make([]byte, 16)}, "seal key 2: must be 32 bytes, got 16"},
		{"24 bytes", [][]byte{testKey(1)[:24]}, "seal key 1: must be 32 bytes, got 24"},
		{"31 bytes", [][]byte{testKey(1)[:31]}, "seal key 1: must be 32 bytes, got 31"},
		{"33 bytes", [][]byte{append(testKey(1), 1)}, "seal key 1: must be 32 bytes, got 33"},
		{"all zero", [][]byte{testKey(1), make([]byte, 32)}, "seal key 2: is all zero"},
		{"duplicate", [][]byte{testKey(1), testKey(2), testKey(1)}, "seal key 3: duplicates seal key 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRing(tc.keys)
			if tc.want == "" {
				if err != nil || len(r.keys) != len(tc.keys) {
					t.Fatalf("NewRing = %v, %v", r, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("NewRing error = %v, want %q", err, tc.want)
			}
			for _, k := range tc.keys {
				if len(k) > 0 && strings.Contains(err.Error(), hex.EncodeToString(k)) {
					t.Errorf("error shows a key")
				}
			}
		})
	}
}

// TestRingCopiesKeys: clearing the caller's slice must not change the ring.
func TestRingCopiesKeys(t *testing.T) {
	key := testKey(1)
	r, err := NewRing([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := r.seal("k", []byte("v"))
	clear(key)
	if _, err := r.open("k", blob); err != nil {
		t.Fatal(err)
	}
}

func TestParseKey(t *testing.T) {
	key := testKey(1)
	for n := 2; !strings.ContainsAny(base64.StdEncoding.EncodeToString(key), "+/"); n++ {
		key = testKey(n) // a key whose standard and URL-safe encodings differ
	}
	good := map[string]string{
		"std":          base64.StdEncoding.EncodeToString(key),
		"raw std":      base64.RawStdEncoding.EncodeToString(key),
		"url":          base64.URLEncoding.EncodeToString(key),
		"raw url":      base64.RawURLEncoding.EncodeToString(key),
		"with newline": base64.StdEncoding.EncodeToString(key) + "\n",
	}
	for name, s := range good {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: ParseKey = %x, %v", name, got, err)
		}
	}
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" // 27 bytes
	bad := map[string]struct{ in, want string }{
		"empty":      {"", "seal key: empty"},
		"spaces":     {"  ", "seal key: empty"},
		"not base64": {"not*base64!" + secret, "seal key: not standard or URL-safe base64"},
		"16 bytes":   {base64.StdEncoding.EncodeToString(key[:16]), "seal key: must be 32 bytes, got 16"},
		"27 bytes":   {secret, "seal key: must be 32 bytes, got 27"},
		"33 bytes":   {base64.StdEncoding.EncodeToString(append(key, 0)), "seal key: must be 32 bytes, got 33"},
	}
	for name, tc := range bad {
		_, err := ParseKey(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.TrimSpace(tc.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
			t.Errorf("%s: error contains the input", name)
		}
	}
}

// TestKeyIDStable: a key's id does not depend on its place in the ring.
func TestKeyIDStable(t *testing.T) {
	a, b := testRing(t, 1, 2), testRing(t, 2, 1)
	if a.keys[0].id != b.keys[1].id || a.keys[1].id != b.keys[0].id {
		t.Fatal("key ids depend on order")
	}
	want := sha256.Sum256(append([]byte("mcpgate seal key id"), testKey(1)...))
	if !bytes.Equal(a.keys[0].id[:], want[:4]) {
		t.Fatalf("key id %x, want %x", a.keys[0].id, want[:4])
	}
}

func TestDerive(t *testing.T) {
	r := testRing(t, 1, 2)
	state := r.Derive("oauth state")
	want := make([]byte, 32)
	io.ReadFull(hkdf.New(sha256.New, testKey(1), nil, []byte("mcpgate oauth state")), want)
	if !bytes.Equal(state, want) {
		t.Fatalf("Derive = %x, want %x", state, want)
	}
	if bytes.Equal(state, r.Derive("other")) {
		t.Error("two purposes derive the same secret")
	}
	if bytes.Equal(state, testRing(t, 2, 1).Derive("oauth state")) {
		t.Error("Derive does not follow the current key")
	}
}

// TestNoKeyInFormat checks that no fmt verb prints a seal key, in any
// encoding, from the ring or the sealed store, bare or inside a struct.
func TestNoKeyInFormat(t *testing.T) {
	r := testRing(t, 1, 2)
	s := Seal(NewMemory(), r)
	values := []any{r, *r, s, *s, struct{ r *Ring }{r}, struct{ r Ring }{*r}, struct{ s *Sealed }{s}}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		for _, v := range values {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	all := strings.Join(out, "\n")
	for _, n := range []int{1, 2} {
		k := testKey(n)
		for _, enc := range []string{
			string(k), hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
			base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k),
			fmt.Sprint(k[:8]), strings.Trim(fmt.Sprint(k[:8]), "[]"),
		} {
			if strings.Contains(all, enc) {
				t.Fatalf("key %d shows in:\n%s", n, all)
			}
		}
	}
	if got := fmt.Sprintf("%v %+v %#v", r, r, r); got != "store.Ring{keys: 2} store.Ring{keys: 2} store.Ring{keys: 2}" {
		t.Errorf("ring prints as %q", got)
	}
}
