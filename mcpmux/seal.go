package mcpmux

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// sealer seals JSON values with AES-GCM for one caller: the gateway's
// requestStates and its legacy session ids. An agent can neither read nor
// alter what it holds, and another caller cannot use it. Each sealed text
// begins with its purpose, a tag naming the format and its version, which
// is also bound into the additional data, so that a text sealed for one
// purpose never opens as another's even under the same key.
type sealer struct{ aead cipher.AEAD }

// sealEncoding writes sealed texts: base64url, printable ASCII that fits a
// header or a JSON string as is. Strict, so that one sealed text has one
// spelling: a lenient decoder would open variants with other trailing
// bits as the same text.
var sealEncoding = base64.RawURLEncoding.Strict()

// newSealer builds a sealer from a key, or from a random key when key is
// nil (what it seals then dies with it).
func newSealer(key []byte) (sealer, error) {
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	sum := sha256.Sum256(key) // any length in, an AES-256 key out
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	return sealer{aead}, err
}

// sealJSON returns v sealed for caller, prefixed with purpose.
func (s sealer) sealJSON(purpose, caller string, v any) string {
	plain, _ := json.Marshal(v)
	// A random 96-bit nonce per text: safe for far more texts than one
	// key will seal (NIST SP 800-38D, section 8.3), and no counter for
	// instances that share the key to keep in step.
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return purpose + sealEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, sealAAD(purpose, caller)))
}

// openJSON reads into v a text sealJSON sealed for purpose and caller, or
// reports false. One failure for every cause (another purpose, forged,
// truncated, another caller's), so that no answer can say which.
func (s sealer) openJSON(purpose, caller, text string, v any) bool {
	body, ok := strings.CutPrefix(text, purpose)
	if !ok {
		return false
	}
	raw, err := sealEncoding.DecodeString(body)
	// The decoder skips line breaks: a text that decodes to fewer bytes
	// than its length says is another spelling of a sealed one.
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n || sealEncoding.EncodedLen(len(raw)) != len(body) {
		return false
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], sealAAD(purpose, caller))
	return err == nil && json.Unmarshal(plain, v) == nil
}

// sealAAD is the additional data of a sealed text: its purpose and its
// caller, split by a NUL that no purpose holds, so that no other pair
// gives the same bytes.
func sealAAD(purpose, caller string) []byte {
	return []byte(purpose + "\x00" + caller)
}
