package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/hkdf"
)

// KeySize is the length of a seal key: 32 bytes, for AES-256.
const KeySize = 32

// Ring is an ordered set of seal keys. The first key seals new records and
// derives secrets; every key opens records sealed under it, so a new key
// can be put first while records sealed under older ones are re-wrapped.
// A Ring never prints its keys.
type Ring struct {
	keys []*ringKey
	rand io.Reader // source of data keys and nonces; tests set it
}

type ringKey struct {
	id keyID
	// raw is a pointer so that fmt, which can reach unexported fields
	// through reflection (say a Ring inside another printed value), shows
	// an address and never the bytes.
	raw  *[KeySize]byte
	aead cipher.AEAD // AES-256-GCM under raw, wrapping data keys
}

// keyID names a seal key in a record without revealing it: the first four
// bytes of SHA-256("mcpgate seal key id" || key). It depends only on the
// key, so reordering the ring changes no id.
type keyID [4]byte

func idOf(key []byte) keyID {
	sum := sha256.Sum256(append([]byte("mcpgate seal key id"), key...))
	return keyID(sum[:4])
}

// NewRing returns a ring of keys, the first of which seals. Every key must
// be KeySize bytes, not all zero, and appear once. Errors name the key by
// its position, counted from 1, and never show its bytes.
func NewRing(keys [][]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal keys: none given")
	}
	r := &Ring{rand: rand.Reader}
	for i, raw := range keys {
		k, err := newRingKey(raw)
		if err != nil {
			return nil, fmt.Errorf("seal key %d: %w", i+1, err)
		}
		for j, other := range r.keys {
			switch {
			case subtle.ConstantTimeCompare(other.raw[:], k.raw[:]) == 1:
				return nil, fmt.Errorf("seal key %d: duplicates seal key %d", i+1, j+1)
			case other.id == k.id:
				return nil, fmt.Errorf("seal key %d: its key id collides with seal key %d; generate another", i+1, j+1)
			}
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

func newRingKey(raw []byte) (*ringKey, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("must be %d bytes, got %d", KeySize, len(raw))
	}
	if allZero(raw) {
		return nil, errors.New("is all zero")
	}
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	own := [KeySize]byte(raw) // a copy: the caller may clear its slice
	return &ringKey{id: idOf(raw), raw: &own, aead: aead}, nil
}

func allZero(b []byte) bool {
	var or byte
	for _, c := range b {
		or |= c
	}
	return or == 0
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ParseKey decodes a seal key written in standard or URL-safe base64, with
// or without padding, and checks that it is KeySize bytes. Surrounding
// white space is ignored. Errors never contain the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("seal key: empty")
	}
	encodings := []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	}
	for _, enc := range encodings {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("seal key: must be %d bytes, got %d", KeySize, len(key))
		}
		return key, nil
	}
	return nil, errors.New("seal key: not standard or URL-safe base64")
}

// Derive returns 32 bytes derived from the current (first) key for
// purpose, with HKDF-SHA256 and info "mcpgate " + purpose. Distinct
// purposes give independent secrets; none of them reveals the key.
func (r *Ring) Derive(purpose string) []byte {
	out := make([]byte, 32)
	kdf := hkdf.New(sha256.New, r.current().raw[:], nil, []byte("mcpgate "+purpose))
	if _, err := io.ReadFull(kdf, out); err != nil {
		panic("store: hkdf: " + err.Error()) // unreachable: 32 bytes is far below HKDF's limit
	}
	return out
}

// current returns the key that seals.
func (r *Ring) current() *ringKey { return r.keys[0] }

// lookup returns the key with id, or nil.
func (r *Ring) lookup(id keyID) *ringKey {
	for _, k := range r.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// String describes the ring without its keys. It has a value receiver, as
// Format does, so that a Ring value prints the same as a *Ring.
func (r Ring) String() string { return fmt.Sprintf("store.Ring{keys: %d}", len(r.keys)) }

// Format prints the ring as String does, whatever the verb, so that no
// verb (%x, %d, %#v, a bad one) reaches the key bytes.
func (r Ring) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }
