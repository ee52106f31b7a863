package connectors

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// AuthType names how mcpgate authenticates to an upstream.
type AuthType string

// The auth types. Bearer and header are static credentials; OAuth tokens
// come from a consent flow and are kept by oauthflow, not here.
const (
	AuthNone   AuthType = ""
	AuthBearer AuthType = "bearer"
	AuthHeader AuthType = "header"
	AuthOAuth  AuthType = "oauth"
)

// Auth is a connector's static credential. Its fields are secrets: they
// never appear in an error, a log line or an API response.
type Auth struct {
	// Type selects the scheme.
	Type AuthType
	// Token is the bearer token, for AuthBearer.
	Token string
	// Name is the header name, for AuthHeader.
	Name string
	// Value is the header value, for AuthHeader.
	Value string
}

// forbiddenHeaders are headers a custom credential may not set: they belong
// to the transport, to the MCP protocol, or to the caller.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Transfer-Encoding": true,
	"Connection": true, "Accept": true, "Cookie": true, "Te": true, "Upgrade": true,
	"Mcp-Session-Id": true, "Mcp-Protocol-Version": true, "Mcp-Method": true, "Mcp-Name": true,
}

// Validate checks the credential's shape without ever echoing its value.
func (a Auth) Validate() error {
	switch a.Type {
	case AuthNone:
		if a.Token != "" || a.Name != "" || a.Value != "" {
			return errors.New("auth has values but no type")
		}
	case AuthOAuth:
		if a.Token != "" || a.Name != "" || a.Value != "" {
			return errors.New("auth oauth takes no static credential")
		}
	case AuthBearer:
		if a.Token == "" {
			return errors.New("auth bearer: token is empty (is its placeholder set?)")
		}
		if !httpguts.ValidHeaderFieldValue(a.Token) || strings.ContainsAny(a.Token, " \t") {
			return errors.New("auth bearer: token has white space or control characters")
		}
	case AuthHeader:
		if !validHeaderName(a.Name) {
			return fmt.Errorf("auth header: %q is not a valid header name", a.Name)
		}
		if forbiddenHeaders[textproto.CanonicalMIMEHeaderKey(a.Name)] || strings.HasPrefix(textproto.CanonicalMIMEHeaderKey(a.Name), "Mcp-") {
			return fmt.Errorf("auth header: mcpgate does not let a credential set %s", textproto.CanonicalMIMEHeaderKey(a.Name))
		}
		if a.Value == "" {
			return fmt.Errorf("auth header %s: value is empty (is its placeholder set?)", a.Name)
		}
		if !httpguts.ValidHeaderFieldValue(a.Value) || !trimmed(a.Value) {
			return fmt.Errorf("auth header %s: value has control characters or surrounding white space", a.Name)
		}
	default:
		return fmt.Errorf("auth type %q must be bearer, header or oauth", a.Type)
	}
	return nil
}

// Header returns the credential as request headers, or nil for none.
func (a Auth) Header() http.Header {
	switch a.Type {
	case AuthBearer:
		return http.Header{"Authorization": {"Bearer " + a.Token}}
	case AuthHeader:
		return http.Header{textproto.CanonicalMIMEHeaderKey(a.Name): {a.Value}}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters, so that it
