package oauthflow

import "crypto/rand"

// verifierLen is the length of a PKCE code verifier: RFC 7636 §4.1 allows
// 43 to 128 characters; 64 from a 66-letter alphabet carry 386 bits.
const verifierLen = 64

// unreserved is RFC 7636's alphabet for code verifiers (RFC 3986 §2.3).
const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// newVerifier returns a fresh PKCE code verifier. Random bytes at or above
// the largest multiple of len(unreserved) are skipped, so that every letter
// is equally likely. The S256 challenge is oauth2.S256ChallengeOption's.
func newVerifier() string {
	const limit = 256 - 256%len(unreserved)
	v := make([]byte, 0, verifierLen)
	buf := make([]byte, verifierLen)
	for len(v) < verifierLen {
		rand.Read(buf) // never fails (crypto/rand, Go 1.24+)
		for _, b := range buf {
			if int(b) < limit && len(v) < verifierLen {
				v = append(v, unreserved[int(b)%len(unreserved)])
			}
		}
	}
	return string(v)
}
