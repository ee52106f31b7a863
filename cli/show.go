package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// shownConnector answers GET /mcpgate/connectors/{id}: the connector as
// listed, with its details.
type shownConnector struct {
	adminConnector
	Details struct {
		Created  time.Time     `json:"created"`
		Updated  time.Time     `json:"updated"`
		LastUsed time.Time     `json:"last_used"`
		User     string        `json:"user"`
		OAuth    *oauthDetails `json:"oauth"`
	} `json:"details"`
}

// oauthDetails is a connector's OAuth client and connection, as the
// admin API shows them: never a secret, only whether one is stored.
type oauthDetails struct {
	Server struct {
		endpoints
		Source string `json:"source"`
	} `json:"server"`
	Recorded *endpoints `json:"recorded"`
	Client   struct {
		Registration string `json:"registration"`
		Kind         string `json:"kind"`
		ID           string `json:"client_id"`
		SecretStored bool   `json:"secret_stored"`
		KeyStored    bool   `json:"key_stored"`
		AuthMethod   string `json:"token_auth_method"`
	} `json:"client"`
	RedirectURI      string   `json:"redirect_uri"`
	Grant            string   `json:"grant"`
	ConfiguredScopes []string `json:"configured_scopes"`
	Scopes           []string `json:"scopes"`
	RequestedScopes  []string `json:"requested_scopes"`
	Account          *struct {
		Subject string `json:"sub"`
		Email   string `json:"email"`
		Name    string `json:"name"`
		Source  string `json:"source"`
	} `json:"account"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	Expires      time.Time `json:"expires"`
	RefreshToken bool      `json:"refresh_token_stored"`
	TokenType    string    `json:"token_type"`
}

// endpoints are an authorization server's issuer and endpoints.
type endpoints struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// field is one line of `connectors show`: a name and its value, left out
// when empty.
type field [2]string

// printShow prints one connector, a field a line.
func printShow(w io.Writer, v shownConnector) {
	fields := append(connectorFields(v.adminConnector), detailFields(v)...)
	if o := v.Details.OAuth; o != nil {
		fields = append(fields, oauthFields(o)...)
	}
	for _, f := range fields {
		if f[1] != "" {
			fmt.Fprintf(w, "%s:\t%s\n", f[0], f[1])
		}
	}
}

// connectorFields are the lines of what the list shows too.
func connectorFields(v adminConnector) []field {
	state, reason, drifted := connectionState(v), "", ""
	if state == "-" {
		state = "" // no OAuth, nothing to connect
	}
	if conn := v.Connection; conn != nil {
		if !conn.Since.IsZero() {
			state += " since " + conn.Since.Format(time.RFC3339)
		}
		reason = conn.Reason
	}
	if v.Tools != nil {
		drifted = strings.Join(slices.Concat(v.Tools.Drifted, prefixed("prompt:", v.Tools.DriftedPrompts)), ", ")
	}
	return []field{
		{"id", v.ID}, {"source", v.Source}, {"url", v.URL}, {"auth", authSummary(v)},
		{"title", v.Title}, {"description", v.Description},
		{"connection", state}, {"reason", reason}, {"tools", toolsState(v.Tools)}, {"drifted", drifted},
	}
}

// detailFields are the lines of the registry's times and the last use.
func detailFields(v shownConnector) []field {
	d := v.Details
	lastUsed := timeOf(d.LastUsed)
	if lastUsed == "" {
		lastUsed = "never"
	}
	if d.User != "" {
		lastUsed += " (by " + d.User + ")"
	}
	return []field{{"user", d.User}, {"added", timeOf(d.Created)}, {"changed", timeOf(d.Updated)}, {"last used", lastUsed}}
}

// oauthFields are the lines of the OAuth client and connection.
func oauthFields(o *oauthDetails) []field {
	s := o.Server
	fields := []field{
		{"issuer", orNotDiscovered(s.Issuer, s.Source)},
		{"authorization endpoint", s.AuthorizationEndpoint}, {"token endpoint", s.TokenEndpoint},
		{"registration endpoint", s.RegistrationEndpoint}, {"revocation endpoint", s.RevocationEndpoint},
	}
	if r := o.Recorded; r != nil && (r.Issuer != s.Issuer || r.TokenEndpoint != s.TokenEndpoint) {
		// The connection refreshes and revokes where it was made.
		fields = append(fields, field{"connected at issuer", r.Issuer}, field{"connected token endpoint", r.TokenEndpoint})
	}
	return append(fields,
		field{"client", clientOf(o)}, field{"client secret", storedOrNot(o.Client.SecretStored, o.Client.Kind != "")},
		field{"client key", storedOrNot(o.Client.KeyStored, false)}, field{"token auth method", o.Client.AuthMethod},
		field{"redirect uri", o.RedirectURI}, field{"grant", o.Grant},
		field{"scopes", strings.Join(o.Scopes, " ")}, field{"requested scopes", strings.Join(o.RequestedScopes, " ")},
		field{"configured scopes", strings.Join(o.ConfiguredScopes, " ")},
		field{"account", accountOf(o)},
		field{"connected", timeOf(o.Created)}, field{"token type", o.TokenType},
		field{"token updated", timeOf(o.Updated)}, field{"token expires", timeOf(o.Expires)},
		field{"refresh token", storedOrNot(o.RefreshToken, !o.Updated.IsZero())},
	)
}

// orNotDiscovered is the issuer, or says how it stands when unknown.
func orNotDiscovered(issuer, source string) string {
	if issuer == "" {
		return source
	}
	return issuer + " (" + source + ")"
}

// clientOf says which client, and how it was obtained.
func clientOf(o *oauthDetails) string {
	c := o.Client
	if c.Kind == "" {
		return "none yet (registration " + c.Registration + ")"
	}
	return c.ID + " (" + c.Kind + ")"
}

// storedOrNot says whether a secret is stored, never what it is; "" when
// there is nothing to say.
func storedOrNot(stored, known bool) string {
	switch {
	case stored:
		return "stored"
	case known:
		return "none"
	}
	return ""
}

// accountOf is the account the provider named, in a few words.
func accountOf(o *oauthDetails) string {
	a := o.Account
	if a == nil {
		return ""
	}
	var parts []string
	for _, s := range []string{a.Name, a.Email, a.Subject} {
		if s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ") + " (from the " + strings.ReplaceAll(a.Source, "_", " ") + ")"
}

// timeOf is t in RFC 3339, or "" for the zero time.
func timeOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}
