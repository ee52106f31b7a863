package oauthflow

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// Account is who the provider says authorized a connection, for display:
// an admin's details and the user's Connectors page. It is never trusted
// for a decision. Every field may be empty: many providers say nothing.
type Account struct {
	// Subject is the provider's identifier of the account: an ID token's
	// sub, or the token response's own sub, user_id, account_id or
	// username.
	Subject string `json:"sub,omitempty"`
	// Email and Name are the account's, when the provider gives them.
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	// Source is where they were read: "id_token" or "token_response".
	Source string `json:"source"`
}

// The sources of an Account.
const (
	AccountFromIDToken       = "id_token"
	AccountFromTokenResponse = "token_response"
)

// maxAccountField bounds each field of an Account: a provider's answer is
// shown on a page, so it is cut, and cleaned of control characters.
const maxAccountField = 256

// idClaims are the claims of an ID token that mcpgate reads. The token
// came straight from the token endpoint over TLS, so OpenID Connect Core
// §3.1.3.7 lets the client rely on TLS instead of the signature; iss and
// aud are still checked (steps 2 and 3), so that claims made for another
// client or by another issuer are not shown. The claims serve display
// only.
type idClaims struct {
	issuer   string
	audience []string
	fields   map[string]json.RawMessage
}

// parseIDToken reads the claims of a JWS compact ID token without
// verifying its signature; nil if it is not one.
func parseIDToken(token string) *idClaims {
	parts := strings.Split(token, ".")
	if len(token) > maxTokenLen || len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(payload, &fields) != nil {
		return nil
	}
	c := &idClaims{issuer: stringField(fields, "iss"), fields: fields}
	if aud := stringField(fields, "aud"); aud != "" {
		c.audience = []string{aud}
	} else {
		_ = json.Unmarshal(fields["aud"], &c.audience)
	}
	return c
}

// account is the Account the claims give for a token issued by issuer to
// clientID, or nil when they were made for someone else or name no one.
func (c *idClaims) account(issuer, clientID string) *Account {
	if c == nil || c.issuer != issuer || !slices.Contains(c.audience, clientID) {
		return nil
	}
	return accountOf(c.fields, AccountFromIDToken, "sub")
}

// responseAccount is the Account that a JSON token response names outside
// an ID token, as some providers do, or nil. The members are read
// leniently: one of an unexpected type is skipped, never an error, since
// the token response itself was already accepted.
func responseAccount(body []byte) *Account {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(trimmed, &fields) != nil {
		return nil
	}
	return accountOf(fields, AccountFromTokenResponse, "sub", "user_id", "account_id", "username")
}

// accountOf reads the account from fields: the subject from the first of
// subjects present, then email and name. nil if all are absent.
func accountOf(fields map[string]json.RawMessage, source string, subjects ...string) *Account {
	a := Account{Email: stringField(fields, "email"), Name: stringField(fields, "name"), Source: source}
	for _, s := range subjects {
		if a.Subject = stringField(fields, s); a.Subject != "" {
			break
		}
	}
	if a.Subject == "" && a.Email == "" && a.Name == "" {
		return nil
	}
	return &a
}

// stringField is the member name of fields if it is a string (or a
// number, as some providers send user ids), cleaned and cut; else "".
func stringField(fields map[string]json.RawMessage, name string) string {
	raw := fields[name]
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return ""
		}
		s = n.String()
	}
	return sanitize(s, maxAccountField)
}
