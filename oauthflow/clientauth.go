package oauthflow

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/oauth2"
)

// private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): a static
// client proves who it is with a short-lived JWT signed by its private
// key instead of a shared secret, so that the authorization server holds
// only the public half and nothing it stores can be replayed as the
// client.

// AuthMethodPrivateKeyJWT is the token_endpoint_auth_method of a static
// client that authenticates with a JWT signed by Config.ClientKey.
const AuthMethodPrivateKeyJWT = "private_key_jwt"

// clientAssertionType is the client_assertion_type of a JWT assertion
// (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime bounds a client assertion: long enough for clock
// skew and the request, short enough that a copy is soon useless.
const assertionLifetime = 60 * time.Second

// minRSABits is the smallest RSA key accepted (NIST SP 800-131A).
const minRSABits = 2048

// maxKeyID bounds client_key_id.
const maxKeyID = 256

// signingKey is a parsed client key and the JWS algorithm it signs with.
type signingKey struct {
	signer crypto.Signer
	alg    string // RS256 or ES256
}

// parseClientKey reads a PEM private key: PKCS #8, PKCS #1 (RSA) or SEC 1
// (EC), the first private key block in the text, so that a file holding
// the certificate too serves. RSA of at least 2048 bits signs RS256, P-256
// signs ES256. Its errors never quote the key.
func parseClientKey(text string) (signingKey, error) {
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		switch {
		case block == nil:
			return signingKey{}, errors.New("client_key holds no PEM private key (a block of type PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return keyOfBlock(block)
		}
	}
}

// keyOfBlock parses one PEM private key block.
func keyOfBlock(block *pem.Block) (signingKey, error) {
	if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
		return signingKey{}, errors.New("client_key is encrypted: give it unencrypted, from a file only mcpgate can read")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return signingKey{}, fmt.Errorf("client_key: a PEM block of type %q is not supported; use PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", sanitize(block.Type, maxCode))
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("client_key: the %s block does not parse", block.Type) // not err: it may quote bytes
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return signingKey{}, fmt.Errorf("client_key: an RSA key of %d bits is too small; use at least %d", k.N.BitLen(), minRSABits)
		}
		return signingKey{signer: k, alg: "RS256"}, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return signingKey{}, fmt.Errorf("client_key: an EC key on %s is not supported; use P-256 (ES256)", k.Curve.Params().Name)
		}
		return signingKey{signer: k, alg: "ES256"}, nil
	}
	return signingKey{}, fmt.Errorf("client_key: a %T key is not supported; use RSA (RS256) or EC on P-256 (ES256)", key)
}

// assertionClaims is the payload of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	JTI      string `json:"jti"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
}

// assertion returns a client assertion for clientID, signed with k, for
// audience. iss and sub are the client (RFC 7523 §3 items 1 and 2); jti
// is random, so that a server that remembers them refuses a replay
// (item 7).
func (k signingKey) assertion(clientID, kid, audience string, now time.Time) (string, error) {
	header := map[string]string{"alg": k.alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	claims := assertionClaims{Issuer: clientID, Subject: clientID, Audience: audience, JTI: rand.Text(),
		Expiry: now.Add(assertionLifetime).Unix(), IssuedAt: now.Unix()}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := k.sign(input)
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// sign signs input's SHA-256 as JWS alg k.alg wants it (RFC 7518 §3.3,
// §3.4): PKCS #1 v1.5 for RS256; for ES256, R and S as 32 big-endian
// bytes each, not the ASN.1 a crypto.Signer returns.
func (k signingKey) sign(input string) ([]byte, error) {
	sum := sha256.Sum256([]byte(input))
	sig, err := k.signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing the client assertion: %v", err)
	}
	if k.alg != "ES256" {
		return sig, nil
	}
	var r, s big.Int
	var inner cryptobyte.String
	der := cryptobyte.String(sig)
	if !der.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
		return nil, errors.New("signing the client assertion: the ECDSA signature is not ASN.1")
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	return raw, nil
}

// authParams adds cl's client authentication to form, a request to
// endpoint (RFC 6749 §2.3): client_id for every method sent in the body,
// client_secret for client_secret_post, and for private_key_jwt a fresh
// assertion whose audience is endpoint, the URL that receives it, which
// is the token endpoint on a token request (RFC 7523 §3 item 3); a
// static client belongs to one issuer (staticBelongs), so its key never
// signs for another server's endpoints. client_secret_basic goes in the
// header instead (postForm). Every token, refresh, revocation and client
// credentials request authenticates here.
func (cl client) authParams(form url.Values, endpoint string) error {
	if cl.style() == oauth2.AuthStyleInHeader {
		return nil
	}
	form.Set("client_id", cl.ID)
	switch cl.AuthMethod {
	case AuthMethodPost:
		form.Set("client_secret", cl.Secret)
	case AuthMethodPrivateKeyJWT:
		k, err := parseClientKey(cl.Key)
		if err != nil {
			return err
		}
		// The wall clock, not the manager's: the server checks exp and
		// iat against its own.
		a, err := k.assertion(cl.ID, cl.KeyID, endpoint, time.Now())
		if err != nil {
			return err
		}
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", a)
	}
	return nil
}

// validKeyID reports whether kid can be a JOSE header's kid.
func validKeyID(kid string) bool {
	return kid == "" || (len(kid) <= maxKeyID && visible(kid))
}
