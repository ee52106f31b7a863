package testas

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// Protect checks DPoP as a resource server must (RFC 9449 §7): a token
// that the server bound to a key (its introspection names cnf.jkt) is
// accepted only under the scheme DPoP with one proof, signed by that key,
// of this request's method and URL and of the token (ath), made within a
// minute; an unbound token only as Bearer. With Options.DPoPNonce, a
// proof must also carry the resource server's nonce (§9).

// proofWindow is how far a proof's iat may be from now.
const proofWindow = time.Minute

// dpopRefusal is why Protect refused a request's DPoP, and the error code
// of its challenge.
type dpopRefusal struct {
	code, why string
}

// checkDPoP returns nil if r presents token, bound to jkt ("" unbound),
// as it must.
func (a *AS) checkDPoP(r *http.Request, scheme, token, jkt string) *dpopRefusal {
	dpop := strings.EqualFold(scheme, "DPoP")
	switch {
	case jkt == "" && !dpop:
		return nil
	case jkt == "":
		return &dpopRefusal{"invalid_token", "a DPoP use of an unbound token"}
	case !dpop:
		return &dpopRefusal{"invalid_token", "a bearer use of a DPoP-bound token"}
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return &dpopRefusal{"invalid_dpop_proof", fmt.Sprintf("%d proofs", len(proofs))}
	}
	p, err := verifyProof(proofs[0])
	if err != nil {
		return &dpopRefusal{"invalid_dpop_proof", err.Error()}
	}
	sum := sha256.Sum256([]byte(token))
	switch {
	case p.HTM != r.Method || p.HTU != "http://"+r.Host+r.URL.Path:
		return &dpopRefusal{"invalid_dpop_proof", "htm or htu mismatch"}
	case p.ATH != base64.RawURLEncoding.EncodeToString(sum[:]):
		return &dpopRefusal{"invalid_dpop_proof", "ath mismatch"}
	case p.thumbprint != jkt:
		return &dpopRefusal{"invalid_dpop_proof", "the proof is signed with another key than the token's"}
	case time.Since(time.Unix(p.IAT, 0)).Abs() > proofWindow:
		return &dpopRefusal{"invalid_dpop_proof", "iat is not recent"}
	case a.opts.DPoPNonce && p.Nonce != a.rsNonce:
		return &dpopRefusal{"use_dpop_nonce", "the resource server's nonce is missing"}
	}
	return nil
}

// dpopChallenge answers a refused DPoP use with 401, a DPoP challenge
// and, when nonces are on, the current nonce, and records why.
func (a *AS) dpopChallenge(w http.ResponseWriter, ref *dpopRefusal) {
	a.seenMu.Lock()
	a.refusals = append(a.refusals, ref.why)
	a.seenMu.Unlock()
	if a.opts.DPoPNonce {
		w.Header().Set("DPoP-Nonce", a.rsNonce)
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP algs="ES256", error=%q`, ref.code))
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// DPoPRefusals returns why Protect refused each request whose token or
// proof was not good DPoP, in arrival order.
func (a *AS) DPoPRefusals() []string {
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	return append([]string(nil), a.refusals...)
}

// newNonce makes the resource server's nonce.
func newNonce() string { return "rs-" + rand.Text() }

// proof is a verified DPoP proof's claims and its key's thumbprint.
type proof struct {
	JTI        string `json:"jti"`
	HTM        string `json:"htm"`
	HTU        string `json:"htu"`
	IAT        int64  `json:"iat"`
	ATH        string `json:"ath"`
	Nonce      string `json:"nonce"`
	thumbprint string
}

// verifyProof checks an ES256 dpop+jwt signed by the P-256 key in its
// header, and returns its claims.
func verifyProof(s string) (*proof, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWS")
	}
	var h struct {
		Typ string            `json:"typ"`
		Alg string            `json:"alg"`
		JWK map[string]string `json:"jwk"`
	}
	if err := decodeSegment(parts[0], &h); err != nil || h.Typ != "dpop+jwt" || h.Alg != "ES256" {
		return nil, errors.New("not a dpop+jwt header with alg ES256")
	}
	pub, thumb, err := publicKey(h.JWK)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || len(sig) != 64 || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("the signature does not verify")
	}
	p := &proof{thumbprint: thumb}
	if err := decodeSegment(parts[1], p); err != nil || p.JTI == "" {
		return nil, errors.New("the claims are not a proof's")
	}
	return p, nil
}

// publicKey reads an EC P-256 jwk, and computes its RFC 7638 thumbprint.
func publicKey(jwk map[string]string) (*ecdsa.PublicKey, string, error) {
	x, errX := base64.RawURLEncoding.DecodeString(jwk["x"])
	y, errY := base64.RawURLEncoding.DecodeString(jwk["y"])
	if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, "", errors.New("the jwk is not a P-256 public key")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, "", errors.New("the jwk is not a point on P-256")
	}
	// encoding/json sorts a map's keys, as RFC 7638 §3 wants them.
	canon, _ := json.Marshal(map[string]string{"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]})
	sum := sha256.Sum256(canon)
	return pub, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// decodeSegment decodes a base64url JSON segment of a JWS into v.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
