package oauthflow

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// testKeyPEM encodes key as PEM: PKCS #8 unless legacy, then PKCS #1 or
// SEC 1.
func testKeyPEM(t testing.TB, key crypto.Signer, legacy bool) string {
	t.Helper()
	var block *pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if legacy {
			block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case *ecdsa.PrivateKey:
		if legacy {
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		}
	}
	if block == nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return string(pem.EncodeToMemory(block))
}

func newRSAKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertNoKey fails if text holds any line of the PEM key's body.
func assertNoKey(t testing.TB, where, text, key string) {
	t.Helper()
	for line := range strings.Lines(key) {
		if line = strings.TrimSpace(line); len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
			t.Errorf("%s quotes the key: %q", where, text)
		}
	}
}

func TestParseClientKey(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, 2048), newECKey(t, elliptic.P256())
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	cert := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	good := []struct {
		name, pem, alg string
	}{
		{"rsa pkcs8", testKeyPEM(t, rsaKey, false), "RS256"},
		{"rsa pkcs1", testKeyPEM(t, rsaKey, true), "RS256"},
		{"ec pkcs8", testKeyPEM(t, ecKey, false), "ES256"},
		{"ec sec1", testKeyPEM(t, ecKey, true), "ES256"},
		{"after a certificate", cert + testKeyPEM(t, ecKey, true), "ES256"},
	}
	for _, tc := range good {
		k, err := parseClientKey(tc.pem)
		if err != nil || k.alg != tc.alg {
			t.Errorf("%s: alg %q, error %v; want %s", tc.name, k.alg, err, tc.alg)
		}
	}
	encrypted := string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}))
	broken := strings.Replace(testKeyPEM(t, rsaKey, true), "MII", "MIX", 1)
	bad := []struct {
		name, pem, want string
	}{
		{"not pem", "SECRET-CANARY", "holds no PEM private key"},
		{"certificate only", cert, "holds no PEM private key"},
		{"small rsa", testKeyPEM(t, newRSAKey(t, 1024), false), "RSA key of 1024 bits is too small"},
		{"p-384", testKeyPEM(t, newECKey(t, elliptic.P384()), false), "EC key on P-384 is not supported"},
		{"ed25519", testKeyPEM(t, edKey, false), "key is not supported; use RSA (RS256) or EC on P-256 (ES256)"},
		{"encrypted", encrypted, "client_key is encrypted"},
		{"broken", broken, "the RSA PRIVATE KEY block does not parse"},
		{"other type", string(pem.EncodeToMemory(&pem.Block{Type: "DSA PRIVATE KEY", Bytes: []byte("x")})), `type "DSA PRIVATE KEY" is not supported`},
	}
	for _, tc := range bad {
		_, err := parseClientKey(tc.pem)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
			continue
		}
		assertNoCanary(t, tc.name, err.Error())
		assertNoKey(t, tc.name, err.Error(), tc.pem)
	}
}

// decodeJWT splits a compact JWS into its header, its claims, its signing
// input and its signature.
func decodeJWT(t testing.TB, jwt string) (map[string]any, map[string]any, string, []byte) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", jwt)
	}
	var header, claims map[string]any
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("part %d does not decode: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return header, claims, parts[0] + "." + parts[1], sig
}

// verifyJWS checks sig over input with pub, as alg says.
func verifyJWS(pub crypto.PublicKey, alg, input string, sig []byte) error {
	sum := sha256.Sum256([]byte(input))
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, sum[:], sig)
	case "ES256":
		if len(sig) != 64 {
			return fmt.Errorf("an ES256 signature of %d bytes", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub.(*ecdsa.PublicKey), sum[:], r, s) {
			return fmt.Errorf("the ES256 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("alg %q", alg)
}

func TestClientAssertion(t *testing.T) {
	// RFC 7523 §3: iss and sub are the client, aud the endpoint, a
	// unique jti, a short exp; the signature verifies with the public key
	// and with no other.
	now := time.Unix(1_800_000_000, 0)
	const endpoint = "https://as.example/token"
	for _, key := range []crypto.Signer{newRSAKey(t, 2048), newECKey(t, elliptic.P256())} {
		k, err := parseClientKey(testKeyPEM(t, key, false))
		if err != nil {
			t.Fatal(err)
		}
		jwt, err := k.assertion("client-1", "kid-1", endpoint, now)
		if err != nil {
			t.Fatal(err)
		}
		header, claims, input, sig := decodeJWT(t, jwt)
		if header["alg"] != k.alg || header["kid"] != "kid-1" || header["typ"] != "JWT" {
			t.Errorf("%s: header %v", k.alg, header)
		}
		want := map[string]any{"iss": "client-1", "sub": "client-1", "aud": endpoint,
			"iat": float64(now.Unix()), "exp": float64(now.Add(time.Minute).Unix())}
		for name, v := range want {
			if claims[name] != v {
				t.Errorf("%s: %s is %v, want %v", k.alg, name, claims[name], v)
			}
		}
		if jti, _ := claims["jti"].(string); len(jti) < 16 {
			t.Errorf("%s: jti %q is not a random value", k.alg, jti)
		}
		if err := verifyJWS(key.Public(), k.alg, input, sig); err != nil {
			t.Errorf("%s: %v", k.alg, err)
		}
		other := map[string]crypto.Signer{"RS256": newRSAKey(t, 2048), "ES256": newECKey(t, elliptic.P256())}[k.alg]
		if verifyJWS(other.Public(), k.alg, input, sig) == nil {
			t.Errorf("%s: the signature verifies with another key", k.alg)
		}
		again, _ := k.assertion("client-1", "", endpoint, now)
		h2, c2, _, _ := decodeJWT(t, again)
		if c2["jti"] == claims["jti"] {
			t.Errorf("%s: two assertions share jti %v", k.alg, c2["jti"])
		}
		if _, ok := h2["kid"]; ok {
			t.Errorf("%s: kid without client_key_id: %v", k.alg, h2)
		}
	}
}

func TestPostFormPrivateKeyJWT(t *testing.T) {
	// A private_key_jwt client sends client_id, the assertion type and an
	// assertion for the URL it posts to, and neither a secret nor an
	// Authorization header.
	key := newECKey(t, elliptic.P256())
	var got url.Values
	var authz string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got, authz = r.PostForm, r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"a","token_type":"Bearer"}`))
	}))
	defer srv.Close()
	c := newConnector(Config{Connector: "c"})
	cl := client{Kind: RegistrationStatic, ID: "client-1", AuthMethod: AuthMethodPrivateKeyJWT, Key: testKeyPEM(t, key, true)}
	status, _, _, err := c.postForm(t.Context(), cl, srv.URL+"/token", url.Values{"grant_type": {"refresh_token"}}, maxTokenBody)
	if err != nil || status != http.StatusOK {
		t.Fatalf("status %d, error %v", status, err)
	}
	if authz != "" || got.Has("client_secret") || got.Get("client_id") != "client-1" ||
		got.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Fatalf("Authorization %q, form %v", authz, got)
	}
	_, claims, input, sig := decodeJWT(t, got.Get("client_assertion"))
	if claims["aud"] != srv.URL+"/token" {
		t.Errorf("aud %v, want the token endpoint", claims["aud"])
	}
	if err := verifyJWS(key.Public(), "ES256", input, sig); err != nil {
		t.Error(err)
	}
	// A key that does not parse fails before anything is sent.
	got = nil
	cl.Key = "SECRET-CANARY"
	if _, _, _, err := c.postForm(t.Context(), cl, srv.URL+"/token", url.Values{}, maxTokenBody); err == nil || got != nil {
		t.Fatalf("a bad key: error %v, sent %v", err, got)
	} else {
		assertNoCanary(t, "postForm error", err.Error())
	}
}

func TestValidatePrivateKeyJWT(t *testing.T) {
	key := testKeyPEM(t, newRSAKey(t, 2048), false)
	base := Config{Connector: "c", OAuthConfig: connectors.OAuthConfig{Resource: "https://r.example/mcp", ClientID: "a",
		Issuer: "https://as.example", AuthorizationEndpoint: "https://as.example/auth", TokenEndpoint: "https://as.example/token"}}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"key", func(c *Config) { c.ClientKey = key }, ""},
		{"key and method", func(c *Config) { c.ClientKey, c.TokenAuthMethod = key, AuthMethodPrivateKeyJWT }, ""},
		{"kid", func(c *Config) { c.ClientKey, c.ClientKeyID = key, "k-1" }, ""},
		{"no key", func(c *Config) { c.TokenAuthMethod = AuthMethodPrivateKeyJWT }, "needs client_key"},
		{"secret too", func(c *Config) {
			c.ClientKey, c.ClientSecret, c.TokenAuthMethod = key, "SECRET-CANARY", AuthMethodPrivateKeyJWT
		}, "client_secret is set, but token_auth_method is private_key_jwt"},
		{"both implied", func(c *Config) { c.ClientKey, c.ClientSecret = key, "SECRET-CANARY" }, "client_secret and client_key are both set"},
		{"key with basic", func(c *Config) {
			c.ClientKey, c.ClientSecret, c.TokenAuthMethod = key, "SECRET-CANARY", AuthMethodBasic
		}, "client_key is set, but token_auth_method is client_secret_basic"},
		{"key with none", func(c *Config) { c.ClientKey, c.TokenAuthMethod = key, AuthMethodNone }, "client_key is set, but token_auth_method is none"},
		{"no client", func(c *Config) { c.ClientKey, c.ClientID = key, "" }, "client_key needs client_id"},
		{"unparsable", func(c *Config) { c.ClientKey = "KEY-CANARY" }, "client_key holds no PEM private key"},
		{"long kid", func(c *Config) { c.ClientKey, c.ClientKeyID = key, strings.Repeat("k", 257) }, "client_key_id must be at most 256"},
	}
	for _, tc := range tests {
		cfg := base
		tc.change(&cfg)
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		case err != nil:
			assertNoCanary(t, tc.name, err.Error())
			assertNoKey(t, tc.name, err.Error(), key)
		}
	}
	cfg := base
	cfg.ClientKey = key
	if m := cfg.withDefaults().TokenAuthMethod; m != AuthMethodPrivateKeyJWT {
		t.Errorf("a key alone means token_auth_method %q, want private_key_jwt", m)
	}
}

func TestClientKeyRedacted(t *testing.T) {
	// The key prints and marshals as REDACTED wherever a client or config
	// holds it.
	values := []any{
		Config{Connector: "n", OAuthConfig: connectors.OAuthConfig{ClientID: "id", ClientKey: "KEY-CANARY-cfg", ClientKeyID: "kid"}},
		client{ID: "id", AuthMethod: AuthMethodPrivateKeyJWT, Key: "KEY-CANARY-c", KeyID: "kid"},
	}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			out := fmt.Sprintf(verb, v)
			assertNoCanary(t, fmt.Sprintf("%s of %T", verb, v), out)
			if !strings.Contains(out, redacted) {
				t.Errorf("%s of %T shows no REDACTED: %s", verb, v, out)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		assertNoCanary(t, fmt.Sprintf("json of %T", v), string(b))
	}
}
