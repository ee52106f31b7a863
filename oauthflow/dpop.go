package oauthflow

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"
)

// DPoP (RFC 9449) binds a connection's tokens to a key pair that mcpgate
// makes for that connection: a token stolen from the store, sealed as it
// is, is of no use without the key, which is sealed with it and never
// leaves mcpgate. Each request that presents the token carries a proof, a
// JWT signed with the key over the request's method and URI.

// dpopAlg is the one proof algorithm mcpgate signs with: ES256 is the one
// every DPoP server supports (RFC 9449 §5 names it as the example, and
// FAPI 2.0 requires it).
const dpopAlg = "ES256"

// dpopKey is the DPoP key pair of one connection. It prints and marshals
// as REDACTED: the private key must never reach a log, an error or an
// admin answer.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	// header is the proof's JOSE header, base64url-encoded once: it is the
	// same for every proof of the key (RFC 9449 §4.2).
	header string
	// thumbprint is the RFC 7638 thumbprint of the public key, the jkt a
	// bound token's cnf claim names (RFC 9449 §6).
	thumbprint string
}

// Format prints the key as REDACTED, whatever the verb.
func (k *dpopKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// MarshalJSON encodes the key as REDACTED.
func (k *dpopKey) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// newDPoPKey makes a fresh P-256 key pair.
func newDPoPKey() (*dpopKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making a dpop key: %v", err)
	}
	return dpopKeyOf(priv)
}

// parseDPoPKey reads a key that encode wrote. The error never quotes it.
func parseDPoPKey(s string) (*dpopKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("the stored dpop key is not base64url")
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, errors.New("the stored dpop key is not a P-256 private key")
	}
	return dpopKeyOf(priv)
}

// encode is the private key as stored (sealed, in a grant record): the
// base64url of its raw scalar. Secret.
func (k *dpopKey) encode() string {
	raw, _ := k.priv.Bytes() // a P-256 key made or parsed here always encodes
	return base64.RawURLEncoding.EncodeToString(raw)
}

// dpopKeyOf computes the proof header and the thumbprint of priv.
func dpopKeyOf(priv *ecdsa.PrivateKey) (*dpopKey, error) {
	pub, err := priv.PublicKey.Bytes()
	if err != nil || len(pub) != 65 {
		return nil, errors.New("the dpop key has no uncompressed P-256 public key")
	}
	x := base64.RawURLEncoding.EncodeToString(pub[1:33])
	y := base64.RawURLEncoding.EncodeToString(pub[33:])
	// RFC 7638 §3.2: the required members only, in lexicographic order,
	// with no whitespace. The same object serves as the header's jwk.
	jwk := `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	sum := sha256.Sum256([]byte(jwk))
	header := `{"typ":"dpop+jwt","alg":"` + dpopAlg + `","jwk":` + jwk + `}`
	return &dpopKey{
		priv:       priv,
		header:     base64.RawURLEncoding.EncodeToString([]byte(header)),
		thumbprint: base64.RawURLEncoding.EncodeToString(sum[:]),
	}, nil
}

// dpopProof is what one proof is made over.
type dpopProof struct {
	// Method and URL are the request's; the URL's query and fragment are
	// left out of the proof (RFC 9449 §4.2, htu).
	Method, URL string
	// Nonce is the server's last DPoP-Nonce, or empty.
	Nonce string
	// AccessToken is the token the request presents, for ath; empty on a
	// token request, which presents none. Secret.
	AccessToken string
	// Now is iat.
	Now time.Time
}

// proofClaims is the proof's payload (RFC 9449 §4.2). The field order is
// the encoding's, so a proof is reproducible but for jti.
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// proof returns a DPoP proof JWT for p, signed with k.
func (k *dpopKey) proof(p dpopProof) (string, error) {
	htu, err := dpopHTU(p.URL)
	if err != nil {
		return "", err
	}
	// A method is an RFC 9110 token, as a header name is.
	if !httpguts.ValidHeaderFieldName(p.Method) {
		return "", fmt.Errorf("dpop proof: %q is not an HTTP method", sanitize(p.Method, maxCode))
	}
	claims := proofClaims{JTI: rand.Text(), HTM: p.Method, HTU: htu, IAT: p.Now.Unix(), Nonce: p.Nonce}
	if p.AccessToken != "" {
		// ath: the base64url SHA-256 of the token's ASCII (RFC 9449 §4.2).
		sum := sha256.Sum256([]byte(p.AccessToken))
		claims.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("dpop proof: %v", err)
	}
	input := k.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := k.sign(input)
	if err != nil {
		return "", err
	}
	return input + "." + sig, nil
}

// sign returns the base64url ES256 signature of input: R and S, 32
// big-endian bytes each (RFC 7518 §3.4), not ASN.1.
func (k *dpopKey) sign(input string) (string, error) {
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("dpop proof: signing: %v", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// dpopHTU is the htu of a request to rawURL: an absolute http(s) URI with
// no query or fragment (RFC 9449 §4.2), normalised as servers compare
// it (RFC 3986 §6.2.2 and §6.2.3): scheme and host in lower case, no
// default port, "/" for an empty path.
func dpopHTU(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return "", errors.New("dpop proof: the request URL is not an absolute URL with a host and no user")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("dpop proof: the request URL's scheme %q is not http or https", sanitize(u.Scheme, maxCode))
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// The values of Config.DPoP. Empty: on when the authorization server
// advertises DPoP with ES256 (dpopUse).
const (
	// DPoPOn binds the connector's tokens to a key per connection.
	DPoPOn = "on"
	// DPoPOff sends bearer tokens.
	DPoPOff = "off"
)

// dpopUse reports whether a new consent of c at as binds its tokens to a
// DPoP key: as the config says, else when the server advertises DPoP
// proofs with ES256 (RFC 9449 §5.1), so that tokens are bound wherever
// the server can bind them.
func (c *connector) dpopUse(as *authServer) bool {
	switch c.cfg.DPoP {
	case DPoPOn:
		return true
	case DPoPOff:
		return false
	}
	return slices.Contains(as.DPoPAlgs, dpopAlg)
}

// dpopVerdict says whether c uses DPoP at as, and why, for a diagnosis.
func (c *connector) dpopVerdict(as *authServer) string {
	switch {
	case c.cfg.DPoP == DPoPOn:
		return "DPoP (RFC 9449) is used: the connector says dpop on"
	case c.cfg.DPoP == DPoPOff:
		return "DPoP (RFC 9449) is not used: the connector says dpop off"
	case c.dpopUse(as):
		return "DPoP (RFC 9449) is used: the authorization server advertises ES256 proofs (dpop_signing_alg_values_supported)"
	}
	return "DPoP (RFC 9449) is not used: the authorization server does not advertise ES256 proofs (dpop_signing_alg_values_supported); dpop on would ask for it"
}

// newDPoPKeyIf returns a new encoded key if use, else "".
func newDPoPKeyIf(use bool) (string, error) {
	if !use {
		return "", nil
	}
	k, err := newDPoPKey()
	if err != nil {
		return "", err
	}
	return k.encode(), nil
}

// maxNonce bounds a DPoP-Nonce a server sends, which goes into every
// proof until it changes.
const maxNonce = 512

// dpopExchange is the DPoP state of one request to an authorization
// server, carried in its context from dpopTokenCall to doDPoP: the key
// that signs the proof, the nonce the proof carries, and the one the
// answer brought.
type dpopExchange struct {
	key   *dpopKey
	now   func() time.Time
	nonce string // sent in the proof
	fresh string // the answer's DPoP-Nonce, if valid
}

type dpopContextKey struct{}

// dpopOf is the exchange ctx carries, or nil.
func dpopOf(ctx context.Context) *dpopExchange {
	x, _ := ctx.Value(dpopContextKey{}).(*dpopExchange)
	return x
}

// dpopTokenCall is tokenCall with a DPoP proof signed with sealedKey
// (dpopKey.encode; "" sends none). An authorization server that wants a
// nonce refuses the request with use_dpop_nonce and a DPoP-Nonce header
// (RFC 9449 §8): the request is sent once more with it, which is no
// second redemption of a code, since the server refused before reading
// it. The nonce is kept for the next request to the same origin.
func (m *Manager) dpopTokenCall(ctx context.Context, c *connector, cl client, endpoint string, form url.Values, sealedKey string, extra ...string) (*tokenResponse, error) {
	if sealedKey == "" {
		return m.tokenCall(ctx, c, cl, endpoint, form, extra...)
	}
	key, err := parseDPoPKey(sealedKey)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, errors.New("dpop: the token endpoint is not a URL")
	}
	at := originOf(u)
	x := &dpopExchange{key: key, now: m.now, nonce: c.dpopNonce(at)}
	tr, err := m.tokenCall(context.WithValue(ctx, dpopContextKey{}, x), c, cl, endpoint, form, extra...)
	if errorCode(err) == "use_dpop_nonce" && x.fresh != "" && x.fresh != x.nonce {
		x.nonce = x.fresh
		tr, err = m.tokenCall(context.WithValue(ctx, dpopContextKey{}, x), c, cl, endpoint, form, extra...)
	}
	if x.fresh != "" {
		c.dpopNonces.Store(at, x.fresh)
	}
	return tr, err
}

// dpopNonce is the last nonce the server at o sent c, or "".
func (c *connector) dpopNonce(o origin) string {
	n, _ := c.dpopNonces.Load(o)
	s, _ := n.(string)
	return s
}

// doDPoP is doCapped with the DPoP proof of the exchange req's context
// carries, if any, and notes the nonce the answer brings.
func doDPoP(hc *http.Client, req *http.Request, max int64) (int, http.Header, []byte, error) {
	x := dpopOf(req.Context())
	if x == nil {
		return doCapped(hc, req, max)
	}
	proof, err := x.key.proof(dpopProof{Method: req.Method, URL: req.URL.String(), Nonce: x.nonce, Now: x.now()})
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("DPoP", proof)
	status, header, body, err := doCapped(hc, req, max)
	if n := header.Get("DPoP-Nonce"); validNonce(n) {
		x.fresh = n
	}
	return status, header, body, err
}

// validNonce reports whether n is a DPoP-Nonce value: 1*NQCHAR (RFC 9449
// §8.1), of a sane length.
func validNonce(n string) bool {
	if n == "" || len(n) > maxNonce {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkType checks the token_type of tr against the request that got
// it: a DPoP token only for a request that sent a proof, which tr is then
// bound to. A server that answers a proof with a Bearer token does not
// support DPoP (RFC 9449 §5), and the token is used as it is.
func (x *dpopExchange) checkType(tr *tokenResponse) error {
	switch {
	case x == nil && tr.dpop:
		return errors.New(`token_type "DPoP" was not asked for: mcpgate sent no DPoP proof`)
	case tr.dpop:
		tr.key = x.key
	}
	return nil
}

// tokenType is the grant's record of tr's token_type: "DPoP", or "" for
// Bearer.
func (tr *tokenResponse) tokenType() string {
	if tr.dpop {
		return TokenTypeDPoP
	}
	return ""
}

// TokenTypeDPoP is the token_type of a token bound to a DPoP key.
const TokenTypeDPoP = "DPoP"

// encodedKey is the encoded key the tokens of tr are bound to, or "".
func (tr *tokenResponse) encodedKey() string {
	if tr.key == nil {
		return ""
	}
	return tr.key.encode()
}

// authorization is the Authorization header value that presents g's
// access token: "DPoP …" for a bound token (RFC 9449 §7.1), else
// "Bearer …".
func (g *grantRecord) authorization() string {
	if g.TokenType == TokenTypeDPoP {
		return TokenTypeDPoP + " " + g.AccessToken
	}
	return "Bearer " + g.AccessToken
}

// dpopBinding is what a Token bound to a DPoP key needs to prove each
// request: the key, the connector's nonces by origin, and the clock.
type dpopBinding struct {
	key    *dpopKey
	nonces *sync.Map
	now    func() time.Time
}

// bindToken makes t, the token of g, prove its requests with g's key
// when g's token is bound to one. A key that cannot be read leaves t as
// it is: the resource server refuses it, and the refusal leads to a
// refresh or a consent, which makes a new one.
func (m *Manager) bindToken(c *connector, g *grantRecord, t *Token) {
	if g.TokenType != TokenTypeDPoP || g.DPoPKey == "" {
		return
	}
	key, err := parseDPoPKey(g.DPoPKey)
	if err != nil {
		m.log.Error("reading a grant's dpop key", zap.String("connector", c.id), zap.Error(err))
		return
	}
	t.dpop = &dpopBinding{key: key, nonces: &c.dpopNonces, now: m.now}
}

// Bound reports whether t is bound to a DPoP key (RFC 9449), so that
// every request that presents it must be sent by t.RoundTrip.
func (t Token) Bound() bool { return t.dpop != nil }

// RoundTrip sends req, which presents a token of t's grant in its
// Authorization header, through rt. For a bound token it first adds a
// DPoP proof of req's method and URL, with the hash (ath) of the token
// req presents, which may be one refresh older or newer than t's (an
// upstream connection sends the requests of every caller of the grant),
// and the resource server's last nonce (RFC 9449 §7); a refusal for want
// of a new nonce (401, use_dpop_nonce, with a DPoP-Nonce header) is sent
// once more with it (§9), if its body can be sent again. A request that
// presents no DPoP token goes as it is.
func (t Token) RoundTrip(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	b := t.dpop
	token, bound := strings.CutPrefix(req.Header.Get("Authorization"), TokenTypeDPoP+" ")
	if b == nil || !bound {
		return rt.RoundTrip(req)
	}
	at := originOf(req.URL)
	if err := b.prove(req, token, b.nonce(at)); err != nil {
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	n := resp.Header.Get("DPoP-Nonce")
	if !validNonce(n) {
		return resp, nil
	}
	b.nonces.Store(at, n)
	if resp.StatusCode != http.StatusUnauthorized || !wantsNonce(resp.Header) || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	again, err := resend(req)
	if err != nil {
		return resp, nil
	}
	drainClose(resp)
	if err := b.prove(again, token, n); err != nil {
		return nil, err
	}
	return rt.RoundTrip(again)
}

// nonce is the last nonce the server at o sent, or "".
func (b *dpopBinding) nonce(o origin) string {
	n, _ := b.nonces.Load(o)
	s, _ := n.(string)
	return s
}

// prove sets req's DPoP proof for the access token it presents.
func (b *dpopBinding) prove(req *http.Request, token, nonce string) error {
	proof, err := b.key.proof(dpopProof{Method: req.Method, URL: req.URL.String(), Nonce: nonce, AccessToken: token, Now: b.now()})
	if err != nil {
		return err
	}
	req.Header.Set("DPoP", proof)
	return nil
}

// wantsNonce reports whether h holds a DPoP challenge with the error
// use_dpop_nonce (RFC 9449 §9).
func wantsNonce(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if len(v) > 5 && strings.EqualFold(v[:5], "DPoP ") && strings.Contains(v, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}

// resend is a copy of req to send again, with its body anew.
func resend(req *http.Request) (*http.Request, error) {
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again.Body = body
	}
	return again, nil
}

// drainClose reads a little of a response that is dropped, so that its
// connection can serve again, and closes it.
func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
}
