package testas

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
)

// KeyClient is a static client that authenticates with private_key_jwt
// (RFC 7523 §2.2): a JWT signed by the private half of Key. It may use
// the authorization code and refresh token grants, with RedirectURI as
// its one redirect URI, and revoke its tokens.
type KeyClient struct {
	ID          string
	RedirectURI string
	// Key is an *rsa.PublicKey or a P-256 *ecdsa.PublicKey; KeyID, if
	// set, its kid, which an assertion's header must then name.
	Key   crypto.PublicKey
	KeyID string
}

// keyClientConfig is a KeyClient as server.mjs reads it.
type keyClientConfig struct {
	ClientID    string            `json:"client_id"`
	RedirectURI string            `json:"redirect_uri"`
	JWK         map[string]string `json:"jwk"`
}

// keyClientConfigs converts clients for server.mjs.
func keyClientConfigs(clients []KeyClient) ([]keyClientConfig, error) {
	var out []keyClientConfig
	for _, c := range clients {
		jwk, err := publicJWK(c.Key)
		if err != nil {
			return nil, fmt.Errorf("key client %s: %v", c.ID, err)
		}
		if c.KeyID != "" {
			jwk["kid"] = c.KeyID
		}
		out = append(out, keyClientConfig{ClientID: c.ID, RedirectURI: c.RedirectURI, JWK: jwk})
	}
	return out, nil
}

// publicJWK is key as a JSON Web Key (RFC 7517, RFC 7518 §6).
func publicJWK(key crypto.PublicKey) (map[string]string, error) {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	switch k := key.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an EC key on %s; use P-256", k.Curve.Params().Name)
		}
		raw, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		return map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}, nil
	}
	return nil, fmt.Errorf("a %T key; use RSA or EC on P-256", key)
}
