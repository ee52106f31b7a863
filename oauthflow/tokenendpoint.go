package oauthflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
)

// mcpgate writes its own token requests instead of calling x/oauth2's
// Exchange and TokenSource (A8): the refresher of x/oauth2 cannot send the
// RFC 8707 resource, its expiry uses time.Now rather than the injected
// clock, and its RetrieveError.Error() embeds the response body. One path
// serves both grant types, so one redemption per code and the checks on a
// token response live in one place. x/oauth2 still names the auth style,
// builds the authorization URL and derives the PKCE challenge.

// Limits on authorization server answers.
const (
	maxTokenBody  = 1 << 20
	maxTokenLen   = 16 << 10
	maxExpiresIn  = 365 * 24 * time.Hour
	maxRegistered = 64 << 10
)

// client is mcpgate as an OAuth client of one authorization server.
type client struct {
	Kind       string // RegistrationStatic, RegistrationCIMD or RegistrationDCR
	ID         string
	Secret     string `secret:"true"`
	AuthMethod string // AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT or AuthMethodNone
	// Key is a static client's PEM private key, for private_key_jwt;
	// KeyID its kid, if any.
	Key   string `secret:"true"`
	KeyID string
}

type clientView client

// Format prints the client with its secret redacted.
func (cl client) Format(f fmt.State, verb rune) { formatRedacted(f, verb, clientView(cl)) }

// MarshalJSON encodes the client with its secret redacted.
func (cl client) MarshalJSON() ([]byte, error) { return marshalRedacted(clientView(cl)) }

// style is the explicit x/oauth2 auth style of the client's
// token_endpoint_auth_method. It is never AuthStyleAutoDetect, which
// retries a failed request with the other style: for a code exchange that
// is a second redemption of the code.
func (cl client) style() oauth2.AuthStyle {
	if cl.AuthMethod == AuthMethodBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// postForm sends form to an endpoint of the authorization server with the
// client's authentication, and returns the status, the header and the
// body, read up to max bytes. It never follows a redirect (see
// newConnector).
func (c *connector) postForm(ctx context.Context, cl client, endpoint string, form url.Values, max int64) (int, http.Header, []byte, error) {
	if err := cl.authParams(form, endpoint); err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cl.style() == oauth2.AuthStyleInHeader {
		// RFC 6749 §2.3.1: form-encode the id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(cl.ID), url.QueryEscape(cl.Secret))
	}
	return doDPoP(c.http, req, max)
}

// doCapped sends req and returns the status, the header and at most max
// bytes of the answer. The status is 0 if no answer came.
func doCapped(hc *http.Client, req *http.Request, max int64) (int, http.Header, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, unreachable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("reading the answer: %v", err)
	}
	if int64(len(body)) > max {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("the answer is larger than %d bytes", max)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// errUnreachable marks a request to which the authorization server sent
// no answer at all.
var errUnreachable = errors.New("could not reach the authorization server")

// unreachable describes a transport error without the request.
func unreachable(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %v", errUnreachable, err)
}

// providerDown reports whether a request failed in a way that may pass:
// the authorization server could not be reached or did not answer in
// time, or it answered 429 or 5xx.
func providerDown(err error) bool {
	if ee, ok := errors.AsType[*endpointError](err); ok {
		return ee.status == http.StatusTooManyRequests || ee.status >= 500
	}
	return errors.Is(err, errUnreachable) || errors.Is(err, context.DeadlineExceeded)
}

// tokenResponse is a checked RFC 6749 §5.1 token response.
type tokenResponse struct {
	AccessToken  string    `secret:"true"`
	RefreshToken string    `secret:"true"`
	Expiry       time.Time // zero: unknown, refresh on refusal
	Scopes       []string  // nil: as requested
	// idToken holds the claims of the ID token that came with the
	// tokens, if any; account, whom the response itself names.
	idToken *idClaims
	account *Account
	// dpop: the token_type is DPoP (RFC 9449 §5); key is the key it is
	// bound to (dpopExchange.checkType).
	dpop bool
	key  *dpopKey
}

// accountFor is the account the response names for tokens that issuer
// issued to clientID: the ID token's, else the response's own, else nil.
func (t *tokenResponse) accountFor(issuer, clientID string) *Account {
	if a := t.idToken.account(issuer, clientID); a != nil {
		return a
	}
	return t.account
}

type tokenResponseView tokenResponse

// Format prints the response with its tokens redacted.
func (t tokenResponse) Format(f fmt.State, verb rune) { formatRedacted(f, verb, tokenResponseView(t)) }

// MarshalJSON encodes the response with its tokens redacted.
func (t tokenResponse) MarshalJSON() ([]byte, error) { return marshalRedacted(tokenResponseView(t)) }

// tokenCall makes one token request, exactly once, and checks the answer.
// The secrets of the request, and extra ones, are scrubbed from any error
// text the server sends back.
func (m *Manager) tokenCall(ctx context.Context, c *connector, cl client, endpoint string, form url.Values, extra ...string) (*tokenResponse, error) {
	secrets := append(extra, cl.Secret, form.Get("code"), form.Get("code_verifier"), form.Get("refresh_token"))
	status, _, body, err := c.postForm(ctx, cl, endpoint, form, maxTokenBody)
	secrets = append(secrets, form.Get("client_assertion"))
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	raw, err := decodeTokenBody(body)
	if status < 200 || status > 299 || raw.Error != "" {
		return nil, &endpointError{endpoint: "token", status: status, code: safeCode(raw.Error),
			description: sanitize(raw.ErrorDescription, maxDescription, secrets...)}
	}
	if err != nil {
		return nil, malformed(fmt.Errorf("token endpoint: %w", err))
	}
	tr, err := raw.check(m.now())
	if err == nil {
		err = dpopOf(ctx).checkType(tr)
	}
	if err != nil {
		return nil, malformed(fmt.Errorf("token response: %w", err))
	}
	tr.idToken, tr.account = parseIDToken(raw.IDToken), responseAccount(body)
	return tr, nil
}

// rawToken is a token response or error as sent.
type rawToken struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	RefreshToken     string          `json:"refresh_token"`
	IDToken          string          `json:"id_token"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Scope            json.RawMessage `json:"scope"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// decodeTokenBody decodes a JSON token response; a form-encoded one is
// accepted too, as some servers still send it. Errors never quote the body.
func decodeTokenBody(body []byte) (rawToken, error) {
	var raw rawToken
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		// Duplicate or case-variant members would let two parsers read
		// two different tokens from one answer.
		err := strictjson.Unmarshal(trimmed, &raw, false)
		if se, ok := errors.AsType[*strictjson.Error](err); ok {
			return rawToken{}, fmt.Errorf("the token response is not strict JSON: %v", se)
		}
		if err != nil {
			return rawToken{}, errors.New("the token response is not a JSON object of the expected shape")
		}
		return raw, nil
	}
	q, err := url.ParseQuery(string(body))
	if err != nil || (q.Get("access_token") == "" && q.Get("error") == "") {
		return rawToken{}, errors.New("the answer is not a token response")
	}
	raw = rawToken{AccessToken: q.Get("access_token"), TokenType: q.Get("token_type"), RefreshToken: q.Get("refresh_token"),
		IDToken: q.Get("id_token"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
	if v := q.Get("expires_in"); v != "" {
		raw.ExpiresIn = json.RawMessage(strconv.Quote(v))
	}
	if v := q.Get("scope"); v != "" {
		raw.Scope = json.RawMessage(strconv.Quote(v))
	}
	return raw, nil
}

// check validates a successful token response (RFC 6749 §5.1), so that
// nothing malformed is half-stored.
func (raw rawToken) check(now time.Time) (*tokenResponse, error) {
	if raw.AccessToken == "" {
		return nil, errors.New("no access_token")
	}
	// The token goes into an Authorization header: nothing that could
	// split it.
	if len(raw.AccessToken) > maxTokenLen || !visible(raw.AccessToken) {
		return nil, errors.New("the access_token is too long or has spaces or control characters")
	}
	if len(raw.RefreshToken) > maxTokenLen || (raw.RefreshToken != "" && !visible(raw.RefreshToken)) {
		return nil, errors.New("the refresh_token is too long or has spaces or control characters")
	}
	dpop := strings.EqualFold(raw.TokenType, TokenTypeDPoP)
	if raw.TokenType != "" && !strings.EqualFold(raw.TokenType, "bearer") && !dpop {
		return nil, fmt.Errorf("token_type %q is not supported: mcpgate sends Bearer and DPoP tokens only", sanitize(raw.TokenType, maxCode))
	}
	lifetime, err := expiresIn(raw.ExpiresIn)
	if err != nil {
		return nil, err
	}
	tr := &tokenResponse{AccessToken: raw.AccessToken, RefreshToken: raw.RefreshToken, Scopes: scopeField(raw.Scope), dpop: dpop}
	if lifetime > 0 {
		tr.Expiry = now.Add(lifetime)
	}
	return tr, nil
}

// expiresIn reads expires_in, a number or a numeric string. Absent or 0
// means unknown (refresh on refusal); negative or fractional is an error;
// beyond a year is cut to a year.
func expiresIn(raw json.RawMessage) (time.Duration, error) {
	s := string(raw)
	if s == "" || s == "null" {
		return 0, nil
	}
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errors.New("expires_in is not a whole number of seconds")
	}
	if n < 0 {
		return 0, errors.New("expires_in is negative")
	}
	if n > int64(maxExpiresIn/time.Second) {
		return maxExpiresIn, nil
	}
	return time.Duration(n) * time.Second, nil
}

// scopeField reads scope, a space-separated string (or, leniently, an
// array); nil means it was absent.
func scopeField(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return validScopes(strings.Fields(s))
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return validScopes(list)
	}
	return nil
}
