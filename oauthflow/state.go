package oauthflow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// The state handle sent to the authorization server is
// base64url(id) "." base64url(HMAC-SHA256(StateKey, stateContext+id)): the
// id names the flow record, the MAC proves that mcpgate made it, so a
// forged or altered handle is refused before the store is touched.
// Single use and expiry come from the record.
const (
	flowIDLen    = 16
	stateContext = "mcpgate-state\x00"
	// maxState bounds the handle: 22 + 1 + 43 characters.
	maxState = 66
)

// b64 is the unpadded base64url encoding, strict about trailing bits so
// that every handle has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// newFlowID returns a fresh random flow id.
func newFlowID() []byte {
	id := make([]byte, flowIDLen)
	rand.Read(id) // never fails (crypto/rand, Go 1.24+)
	return id
}

// stateMAC authenticates a flow id.
func stateMAC(key, id []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(stateContext))
	h.Write(id)
	return h.Sum(nil)
}

// stateHandle returns the state parameter for flow id.
func stateHandle(key, id []byte) string {
	return b64.EncodeToString(id) + "." + b64.EncodeToString(stateMAC(key, id))
}

// parseState checks a state handle and returns its flow id's key segment.
// The MAC is compared in constant time.
func parseState(key []byte, state string) (string, bool) {
	if len(state) > maxState || strings.ContainsFunc(state, notStateRune) {
		return "", false // base64 decoders skip CR and LF; refuse them first
	}
	idText, macText, ok := strings.Cut(state, ".")
	if !ok {
		return "", false
	}
	id, err1 := b64.DecodeString(idText)
	mac, err2 := b64.DecodeString(macText)
	if err1 != nil || err2 != nil || len(id) != flowIDLen || len(mac) != sha256.Size {
		return "", false
	}
	if !hmac.Equal(mac, stateMAC(key, id)) {
		return "", false
	}
	return idText, true
}

// notStateRune reports whether r cannot appear in a state handle.
func notStateRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.')
}
