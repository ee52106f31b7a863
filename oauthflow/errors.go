package oauthflow

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// Errors that callers branch on.
var (
	// ErrConsentRequired means no usable credential exists until someone
	// consents (the user, or an admin for shared consent). It is wrapped in
	// a *ConsentError.
	ErrConsentRequired = errors.New("consent required")
	// ErrUnknownConnector means no OAuth connector has the id asked for.
	ErrUnknownConnector = errors.New("unknown oauth connector")
	// ErrBadRedirect means a redirect_url is not on an allowed origin.
	ErrBadRedirect = errors.New("redirect_url must be an absolute http(s) URL on this site or an allowed origin")
	// ErrMisconfigured means consent cannot work until an admin changes
	// the connector or the authorization server; the error says what.
	ErrMisconfigured = errors.New("connector is misconfigured")
	// ErrNoIdentity means a per-user connector was asked for without the
	// caller's identity.
	ErrNoIdentity = errors.New("per-user consent needs the caller's identity")
	// ErrTooManyConsents means so many consents are pending that a new
	// one is refused; they expire within ten minutes.
	ErrTooManyConsents = errors.New("too many consents are pending: try again in a few minutes")
)

// ConsentError says that a connector has no usable credential for a caller,
// and why. Callers answer it with the connect URL.
type ConsentError struct {
	// Connector is the connector's id.
	Connector string
	// Status is what the user is told: needs_auth, or misconfigured when
	// consent alone will not help.
	Status connectors.Status
	// Reason says why the connection yields no token, in mcpgate's own
	// words (never a provider's), safe to show: why it stopped, or that
	// no one connected it yet, and who must connect it when that is an
	// admin.
	Reason string
}

// Error returns a message safe to show to the user.
func (e *ConsentError) Error() string {
	if e.Status == connectors.StatusMisconfigured {
		return fmt.Sprintf("connector %s is misconfigured: %s", e.Connector, e.Reason)
	}
	return fmt.Sprintf("connector %s needs consent: %s", e.Connector, e.Reason)
}

// Unwrap makes every ConsentError match ErrConsentRequired.
func (e *ConsentError) Unwrap() error { return ErrConsentRequired }

// misconfigured is an ErrMisconfigured with the connector and the reason.
type misconfigured struct{ connector, reason string }

func (e *misconfigured) Error() string {
	return fmt.Sprintf("connector %s is misconfigured: %s", e.connector, e.reason)
}

func (e *misconfigured) Is(target error) bool { return target == ErrMisconfigured }

// errMalformed matches an answer of the token endpoint that is not a
// token response mcpgate can use (RFC 6749 §5.1): not JSON of the
// expected shape, or with a member it refuses (no access_token, a token
// with spaces, a token type other than bearer…).
var errMalformed = errors.New("malformed token response")

// malformedResponse is an errMalformed that keeps the text of what was
// wrong, which names no secret.
type malformedResponse struct{ err error }

// malformed marks err as a malformed token response.
func malformed(err error) error { return &malformedResponse{err} }

func (e *malformedResponse) Error() string        { return e.err.Error() }
func (e *malformedResponse) Unwrap() error        { return e.err }
func (e *malformedResponse) Is(target error) bool { return target == errMalformed }

// CallbackError is why a consent callback failed, in terms safe to show
// in a page or to pass on to the application that asked for the consent.
type CallbackError struct {
	// Code is an RFC 6749 §4.1.2.1 error code: invalid_request,
	// access_denied, server_error…
	Code string
	// Description is short, printable and free of secrets.
	Description string
	// Status is the HTTP status to answer with.
	Status int
}

// Error returns the code and the description.
func (e *CallbackError) Error() string {
	return "oauth callback: " + e.Code + ": " + e.Description
}

// callbackError builds a CallbackError.
func callbackError(status int, code, description string) *CallbackError {
	return &CallbackError{Code: code, Description: description, Status: status}
}

// authorizeErrors are the error codes of RFC 6749 §4.1.2.1, the only ones
// passed on from an authorization server's redirect.
var authorizeErrors = map[string]int{
	"invalid_request":           http.StatusBadRequest,
	"unauthorized_client":       http.StatusBadRequest,
	"access_denied":             http.StatusForbidden,
	"unsupported_response_type": http.StatusBadRequest,
	"invalid_scope":             http.StatusBadRequest,
	"server_error":              http.StatusBadGateway,
	"temporarily_unavailable":   http.StatusBadGateway,
}

// endpointError is an authorization server's refusal at its token,
// registration or revocation endpoint, reduced to what is safe to show:
// never the body, which may echo what was sent (RFC 6749 §5.2 fields only,
// sanitized, with the secrets of the request scrubbed).
type endpointError struct {
	endpoint    string // "token", "registration", "revocation"
	status      int
	code        string
	description string
}

func (e *endpointError) Error() string {
	s := fmt.Sprintf("the %s endpoint answered HTTP %d", e.endpoint, e.status)
	if e.code != "" {
		s += " " + e.code
	}
	if e.description != "" {
		s += fmt.Sprintf(" (%s)", e.description)
	}
	return s
}

// errorCode returns the RFC 6749 error code of err, or "".
func errorCode(err error) string {
	var ee *endpointError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ""
}

// Limits on what an authorization server's text may put in an error.
const (
	maxCode        = 64
	maxDescription = 200
)

// safeCode returns code if it is a well-formed RFC 6749 error code
// (§A.7: %x20-21 / %x23-5B / %x5D-7E, no space in practice), else "".
func safeCode(code string) string {
	if code == "" || len(code) > maxCode {
		return ""
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return ""
		}
	}
	return code
}

// sanitize keeps text fit for a page, a log line or a URL parameter: it
// drops control characters and invalid UTF-8, then replaces every secret
// with REDACTED (in that order, so that a secret split by control
// characters is still found), and cuts the result to max bytes on a rune
// boundary.
func sanitize(s string, max int, secrets ...string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return textcut.Prefix(strings.TrimSpace(s), max)
}

// withError returns target with error and error_description added to its
// query, percent-encoded, for a redirect back to the application.
func withError(target string, e *CallbackError) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("error", e.Code)
	q.Set("error_description", e.Description)
	u.RawQuery = q.Encode()
	return u.String()
}

// withheld is an error whose text is the gateway's own, for the agent and
// the Connectors page, around one whose text carries the provider's words
// (an error_description, say), which go only to the log and the audit:
// a provider's answer is never echoed to users (issue 12, item 5).
type withheld struct {
	text string
	err  error
}

func (e *withheld) Error() string { return e.text }
func (e *withheld) Unwrap() error { return e.err }

// withhold is err with the text that format and args make.
func withhold(err error, format string, args ...any) error {
	return &withheld{text: fmt.Sprintf(format, args...), err: err}
}

// statusOf is " (HTTP <status> <code>)" for an endpoint's error answer,
// else "": the status and a well-formed RFC 6749 error code name the
// failure without the provider's free text.
func statusOf(err error) string {
	ee, ok := errors.AsType[*endpointError](err)
	if !ok {
		return ""
	}
	if code := safeCode(ee.code); code != "" {
		return fmt.Sprintf(" (HTTP %d %s)", ee.status, code)
	}
	return fmt.Sprintf(" (HTTP %d)", ee.status)
}
