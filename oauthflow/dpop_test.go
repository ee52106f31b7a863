package oauthflow

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// decodedProof is a DPoP proof taken apart and checked as a resource
// server would: the signature verified with the header's own jwk.
type decodedProof struct {
	header struct {
		Typ string            `json:"typ"`
		Alg string            `json:"alg"`
		JWK map[string]string `json:"jwk"`
	}
	claims map[string]any
	pub    *ecdsa.PublicKey
}

// verifyProof decodes proof and verifies its ES256 signature with the
// public key in its header, independently of dpop.go.
func verifyProof(t *testing.T, proof string) decodedProof {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof has %d parts", len(parts))
	}
	var d decodedProof
	decodePart(t, parts[0], &d.header)
	decodePart(t, parts[1], &d.claims)
	x, y := unb64(t, d.header.JWK["x"]), unb64(t, d.header.JWK["y"])
	if d.header.JWK["kty"] != "EC" || d.header.JWK["crv"] != "P-256" || len(d.header.JWK) != 4 {
		t.Fatalf("jwk = %v, want a P-256 public key and nothing more", d.header.JWK)
	}
	d.pub = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	sig := unb64(t, parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(d.pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the proof's signature does not verify with its jwk")
	}
	return d
}

func decodePart(t *testing.T, part string, v any) {
	t.Helper()
	if err := json.Unmarshal(unb64(t, part), v); err != nil {
		t.Fatalf("decoding %q: %v", part, err)
	}
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

func TestDPoPProof(t *testing.T) {
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name                 string
		p                    dpopProof
		wantHTU, wantATH     string
		wantNonce            string
		wantNoATH, wantNoNce bool
	}{
		{name: "token request", p: dpopProof{Method: "POST", URL: "https://AS.example.COM:443/token?x=1#f", Now: now},
			wantHTU: "https://as.example.com/token", wantNoATH: true, wantNoNce: true},
		{name: "resource with nonce", p: dpopProof{Method: "GET", URL: "http://127.0.0.1:8080/mcp?q", Nonce: "n-1", AccessToken: "at-1", Now: now},
			wantHTU: "http://127.0.0.1:8080/mcp", wantNonce: "n-1",
			// RFC 9449 §4.2: base64url(SHA-256(ASCII(access token))).
			wantATH: base64.RawURLEncoding.EncodeToString(sha256Sum("at-1"))},
		{name: "empty path, default port", p: dpopProof{Method: "POST", URL: "HTTP://Host:80", Now: now},
			wantHTU: "http://host/", wantNoATH: true, wantNoNce: true},
		{name: "ipv6", p: dpopProof{Method: "POST", URL: "https://[::1]:8443/a%20b/", Now: now},
			wantHTU: "https://[::1]:8443/a%20b/", wantNoATH: true, wantNoNce: true},
	}
	jtis := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof, err := k.proof(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			d := verifyProof(t, proof)
			if d.header.Typ != "dpop+jwt" || d.header.Alg != "ES256" {
				t.Errorf("header typ %q alg %q", d.header.Typ, d.header.Alg)
			}
			c := d.claims
			if c["htm"] != tt.p.Method || c["htu"] != tt.wantHTU || c["iat"] != float64(now.Unix()) {
				t.Errorf("claims = %v, want htm %s htu %s iat %d", c, tt.p.Method, tt.wantHTU, now.Unix())
			}
			jti, _ := c["jti"].(string)
			if len(jti) < 16 || jtis[jti] {
				t.Errorf("jti %q is short or repeated", jti)
			}
			jtis[jti] = true
			if _, has := c["ath"]; tt.wantNoATH == has || (!tt.wantNoATH && c["ath"] != tt.wantATH) {
				t.Errorf("ath = %v, want %q", c["ath"], tt.wantATH)
			}
			if _, has := c["nonce"]; tt.wantNoNce == has || (!tt.wantNoNce && c["nonce"] != tt.wantNonce) {
				t.Errorf("nonce = %v, want %q", c["nonce"], tt.wantNonce)
			}
			if got := thumbprintOf(d.header.JWK); got != k.thumbprint {
				t.Errorf("thumbprint = %s, the jwk's is %s", k.thumbprint, got)
			}
		})
	}
}

func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// thumbprintOf computes the RFC 7638 thumbprint of an EC jwk: its
// required members, sorted (as encoding/json sorts a map's keys).
func thumbprintOf(jwk map[string]string) string {
	b, _ := json.Marshal(map[string]string{"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]})
	return base64.RawURLEncoding.EncodeToString(sha256Sum(string(b)))
}

func TestDPoPProofRejects(t *testing.T) {
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []dpopProof{
		{Method: "POST", URL: "/token"},
		{Method: "POST", URL: "ftp://as/token"},
		{Method: "POST", URL: "https://user:pw@as/token"},
		{Method: "POST", URL: "https://as/%zz"},
		{Method: "PO ST", URL: "https://as/token"},
		{Method: "", URL: "https://as/token"},
		{Method: "POST\r\nX: y", URL: "https://as/token"},
	} {
		if proof, err := k.proof(p); err == nil {
			t.Errorf("proof(%q %q) = %s, want an error", p.Method, p.URL, proof)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("the error quotes the URL's password: %v", err)
		}
	}
}

func TestDPoPKeyStored(t *testing.T) {
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseDPoPKey(k.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !back.priv.Equal(k.priv) || back.thumbprint != k.thumbprint || back.header != k.header {
		t.Fatal("the key read back differs")
	}
	other, _ := newDPoPKey()
	if other.thumbprint == k.thumbprint {
		t.Fatal("two keys share a thumbprint")
	}
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString([]byte("short")), strings.Repeat("A", 43)} {
		if _, err := parseDPoPKey(bad); err == nil {
			t.Errorf("parseDPoPKey(%q) succeeded", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

func TestDPoPKeyNeverShown(t *testing.T) {
	// The private key, in memory or encoded in a grant, prints and
	// marshals as REDACTED everywhere.
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	secret := k.encode()
	d := k.priv.D.String()
	g := grantRecord{DPoPKey: secret, TokenType: "DPoP"}
	core, logs := newObserved()
	for _, v := range []any{k, *k, g, &g, struct{ K *dpopKey }{k}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret) || strings.Contains(out, d) || strings.Contains(out, fmt.Sprintf("%x", k.priv.D)) {
				t.Errorf("%s of %T shows the private key: %s", verb, v, out)
			}
		}
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), d) {
			t.Errorf("json of %T shows the private key: %s", v, b)
		}
		zap.New(core).Info("value", zap.Any("v", v), zap.Reflect("r", v))
	}
	for _, e := range logs.All() {
		if out := fmt.Sprint(e.ContextMap()); strings.Contains(out, secret) || strings.Contains(out, d) {
			t.Errorf("zap shows the private key: %s", out)
		}
	}
	// The stored form keeps it.
	b, err := json.Marshal((*grantWire)(&g))
	if err != nil || !strings.Contains(string(b), secret) {
		t.Fatalf("the stored grant lost its dpop key: %v", err)
	}
}

func FuzzDPoPHTU(f *testing.F) {
	for _, s := range []string{"https://a/b?c#d", "http://[::1]:80/", "HTTPS://X:443", "", "%", "http://a:b:c/", "//x/y"} {
		f.Add(s)
	}
	k, err := newDPoPKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		htu, err := dpopHTU(raw)
		if err != nil {
			return
		}
		if strings.ContainsAny(htu, "?#") || !(strings.HasPrefix(htu, "http://") || strings.HasPrefix(htu, "https://")) {
			t.Fatalf("dpopHTU(%q) = %q", raw, htu)
		}
		if _, err := k.proof(dpopProof{Method: "POST", URL: raw}); err != nil {
			t.Fatalf("proof for an accepted URL %q: %v", raw, err)
		}
	})
}
