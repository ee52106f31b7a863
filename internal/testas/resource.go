package testas

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// wellKnownPRM is the well-known path of OAuth protected resource metadata
// (RFC 9728 section 3).
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// introspectionPath is oidc-provider's default introspection route, which
// server.mjs keeps.
const introspectionPath = "/token/introspection"

// Protect returns next behind the checks of an OAuth resource server for
// Options.Resource. It serves the resource's protected resource metadata
// (RFC 9728) at its well-known URL, for example
// /.well-known/oauth-protected-resource/mcp, and answers every other request
// that lacks a bearer token that is active and has Options.Resource as its
// audience with 401 and a challenge naming that URL. Tokens are introspected
// on every request, without a cache, so that expiry and revocation take
// effect at once.
func (a *AS) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == a.prm.Path {
			a.serveMetadata(w)
			return
		}
		a.guard(w, r, next)
	})
}

// serveMetadata writes the protected resource metadata document.
func (a *AS) serveMetadata(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resource":                 a.opts.Resource,
		"authorization_servers":    []string{a.Issuer},
		"scopes_supported":         a.opts.Scopes,
		"bearer_methods_supported": []string{"header"},
	})
}

// guard passes the request to next if its bearer token is good for the
// resource, and records whose token it was.
func (a *AS) guard(w http.ResponseWriter, r *http.Request, next http.Handler) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	// RFC 9110 section 11.1: the scheme is case-insensitive.
	if !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "DPoP")) || token == "" {
		a.challenge(w, "")
		return
	}
	in, err := a.introspect(r.Context(), token)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if !in.Active || !slices.Contains(in.Aud, a.opts.Resource) {
		a.challenge(w, "invalid_token")
		return
	}
	if ref := a.checkDPoP(r, scheme, token, in.Cnf.JKT); ref != nil {
		a.dpopChallenge(w, ref)
		return
	}
	a.seenMu.Lock()
	a.seen = append(a.seen, in.Sub)
	a.seenMu.Unlock()
	next.ServeHTTP(w, r)
}

// challenge answers 401 with the challenge of RFC 9728 section 5.1, which
// tells the client where the resource's metadata is, and the RFC 6750
// section 3.1 error code when a token was presented.
func (a *AS) challenge(w http.ResponseWriter, code string) {
	c := fmt.Sprintf(`Bearer resource_metadata=%q`, a.prm.String())
	if code != "" {
		c += fmt.Sprintf(`, error=%q`, code)
	}
	w.Header().Set("WWW-Authenticate", c)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// Seen returns the subject (account) of every request Protect let through,
// in arrival order, so that tests can tell whose token reached the
// upstream.
func (a *AS) Seen() []string {
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	return append([]string(nil), a.seen...)
}

// Active reports whether token, an access or refresh token, is active, and
// for an access token its audience, by introspecting it (RFC 7662) as the
// resource server's client "testas-rs".
func (a *AS) Active(ctx context.Context, token string) (active bool, audience string, err error) {
	in, err := a.introspect(ctx, token)
	if err != nil {
		return false, "", err
	}
	return in.Active, strings.Join(in.Aud, " "), nil
}

// introspection is the part of an RFC 7662 response that testas reads.
type introspection struct {
	Active bool     `json:"active"`
	Sub    string   `json:"sub"`
	Aud    audience `json:"aud"`
	// Cnf names the key a DPoP-bound token is bound to (RFC 9449 §6.2).
	Cnf struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// introspect asks the server about token.
func (a *AS) introspect(ctx context.Context, token string) (introspection, error) {
	var in introspection
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+introspectionPath, strings.NewReader(form.Encode()))
	if err != nil {
		return in, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 section 2.3.1: the credentials are form-encoded first.
	req.SetBasicAuth(url.QueryEscape(rsClientID), url.QueryEscape(a.rsSecret))
	resp, err := a.client.Do(req)
	if err != nil {
		return in, fmt.Errorf("testas: introspecting: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return in, fmt.Errorf("testas: introspecting: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return in, fmt.Errorf("testas: decoding introspection: %w", err)
	}
	return in, nil
}

// rsClientID is the resource server's client in server.mjs.
const rsClientID = "testas-rs"

// audience is a JWT-style aud: one string or an array of them.
type audience []string

// UnmarshalJSON accepts both forms.
func (au *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*au = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(au))
}
