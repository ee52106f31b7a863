package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// connectorFlags defines the flags that describe a connector, which
// `connectors add` and `connectors update` share: for update, each changes
// only what it names, and an empty value clears a member to its default.
func connectorFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("mcp-server-url", "", "The upstream's streamable HTTP MCP endpoint")
	f.String("api", "", "The base URL of the upstream's HTTP API, served at /connectors/<id>/api/")
	f.String("title", "", "A title for people")
	f.String("description", "", "A description for people")
	f.Bool("oauth", false, "Authenticate with OAuth, everything discovered from the server")
	f.Bool("dcr", false, "Register the OAuth client dynamically (RFC 7591)")
	f.String("client-id", "", "A pre-registered OAuth client id")
	f.String("client-secret", "", "The pre-registered client's secret; - reads it from standard input")
	f.String("client-name", "", "The client_name to register with dynamically (default: mcpgate <id>)")
	f.String("client-key", "", "The pre-registered client's PEM private key, for private_key_jwt: - reads it from standard input, else the file named")
	f.String("client-key-id", "", "The kid of the client key's assertions, if the server wants one")
	f.String("token-auth-method", "", "client_secret_basic, client_secret_post, private_key_jwt (default with --client-key) or none")
	f.String("audience", "", "The audience parameter, for servers that want one")
	f.String("resource", "", "The RFC 8707 resource indicator (default: the URL)")
	f.StringArray("scopes", nil, "Scopes to request, separated by commas, spaces or newlines (default: what the server advertises)")
	f.String("consent", "", "shared (an admin consents once) or per_user (each user consents; default)")
	f.String("dpop", "", "on: bind the tokens to a key per connection (DPoP, RFC 9449); off: bearer tokens (default: on where the authorization server advertises DPoP)")
	f.String("grant", "", "client-credentials (the client gets its own token, with no consent; needs --client-id and --client-secret, and implies --consent shared) or authorization-code (default)")
	f.String("issuer", "", "The authorization server's issuer, instead of the one discovery finds")
	f.String("authorization-endpoint", "", "The authorization endpoint, instead of the discovered one")
	f.String("token-endpoint", "", "The token endpoint, instead of the discovered one")
	f.String("registration-endpoint", "", "The dynamic registration endpoint, instead of the discovered one")
	f.String("revocation-endpoint", "", "The revocation endpoint, instead of the discovered one")
	f.Bool("insecure-loopback", false, "Let discovered URLs use http:// on loopback: tests and development only")
	f.String("bearer", "", "A static bearer token instead of OAuth; - reads it from standard input")
	f.String("header", "", "A static credential header <name>=<value> instead of OAuth; a value of - is read from standard input")
}

// oauthMembers maps the flags that make a connector use OAuth to the
// members of its oauth object; dcr and oauth are handled on their own.
var oauthMembers = map[string]string{
	"client-id": "client_id", "client-secret": "client_secret", "client-name": "client_name",
	"client-key": "client_key", "client-key-id": "client_key_id", "dpop": "dpop",
	"token-auth-method": "token_auth_method", "audience": "audience", "resource": "resource",
	"scopes": "scopes", "consent": "consent", "grant": "grant", "issuer": "issuer", "insecure-loopback": "insecure_loopback",
	"authorization-endpoint": "authorization_endpoint", "token-endpoint": "token_endpoint",
	"registration-endpoint": "registration_endpoint", "revocation-endpoint": "revocation_endpoint",
}

// oauthFlags are the flags that make a connector use OAuth.
var oauthFlags = append([]string{"oauth", "dcr"}, slices.Sorted(maps.Keys(oauthMembers))...)

// topMembers maps the flags of update that change a top-level member.
var topMembers = map[string]string{"mcp-server-url": "url", "api": "api", "title": "title", "description": "description"}

// update runs `connectors update`: it sends a merge patch (RFC 7396) of
// the members whose flags are given.
func (c *cli) update(args []string) error {
	patch, err := c.patch()
	if err != nil {
		return err
	}
	return call(c, http.MethodPatch, connectorURI(args[0], "", nil), patch, printUpdated("Updated", args[0]))
}

// enable runs `connectors enable`.
func (c *cli) enable(args []string) error {
	return call(c, http.MethodPatch, connectorURI(args[0], "", nil), map[string]bool{"enabled": true}, printUpdated("Enabled", args[0]))
}

// disable runs `connectors disable`.
func (c *cli) disable(args []string) error {
	return call(c, http.MethodPatch, connectorURI(args[0], "", nil), map[string]bool{"enabled": false}, printUpdated("Disabled", args[0]))
}

// patch builds the merge patch of `connectors update` from the flags
// given: only they change.
func (c *cli) patch() (map[string]any, error) {
	patch := map[string]any{}
	for flag, member := range topMembers {
		if c.flags.Changed(flag) {
			patch[member] = orNull(c.str(flag))
		}
	}
	auth, err := c.authPatch()
	if err != nil {
		return nil, err
	}
	if auth != nil {
		patch["auth"] = auth
	}
	if len(patch) == 0 {
		return nil, errors.New("say what to change with the flags of connectors add (see --help); connectors enable and disable switch a connector")
	}
	return patch, nil
}

// authPatch is the patch of the connector's credential: a kind given
// replaces the other kinds' members with null, so that switching kinds
// leaves nothing of the old one.
func (c *cli) authPatch() (map[string]any, error) {
	auth, err := c.auth()
	if err != nil || auth == nil {
		return nil, err
	}
	out := map[string]any{"type": auth.Type, "token": nil, "header": nil, "value": nil, "oauth": nil}
	switch auth.Type {
	case authBearer:
		out["token"] = auth.Token
	case authHeader:
		out["header"], out["value"] = auth.Header, auth.Value
	case authOAuth:
		out["oauth"], err = c.oauthPatch()
	}
	return out, err
}

// oauthPatch is the patch of the oauth object: the members whose flags
// are given.
func (c *cli) oauthPatch() (map[string]any, error) {
	out := map[string]any{}
	if c.boolean("dcr") {
		out["registration"] = "dcr"
	}
	for flag, member := range oauthMembers {
		if !c.flags.Changed(flag) {
			continue
		}
		switch flag {
		case "insecure-loopback":
			out[member] = c.boolean(flag)
		case "scopes":
			out[member] = orNull(c.scopes())
		case "grant":
			out[member] = orNull(c.grant())
			if c.grant() == grantClientCredentials && !c.flags.Changed("consent") {
				out["consent"] = "shared"
			}
		case "client-key":
			key, err := c.clientKey(c.str(flag))
			if err != nil {
				return nil, err
			}
			out[member] = orNull(key)
		case "client-secret":
			secret, err := c.secret(c.str(flag))
			if err != nil {
				return nil, err
			}
			out[member] = orNull(secret)
		default:
			out[member] = orNull(c.str(flag))
		}
	}
	return out, nil
}

// grantClientCredentials is the admin API's word for the client
// credentials grant.
const grantClientCredentials = "client_credentials"

// grant is --grant in the admin API's words: client-credentials is
// client_credentials.
func (c *cli) grant() string { return strings.ReplaceAll(c.str("grant"), "-", "_") }

// scopes is --scopes as one string, given as many times as the flag is:
// the admin API splits it on commas, spaces and newlines, as every
// surface of mcpgate does.
func (c *cli) scopes() string {
	scopes, _ := c.flags.GetStringArray("scopes")
	return strings.Join(scopes, ",")
}

// orNull is s, or JSON null for an empty s: a merge patch clears a member
// with null.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// printUpdated prints the answer to an update, an enable or a disable.
func printUpdated(did, id string) func(w io.Writer, v updatedConnector) {
	return func(w io.Writer, v updatedConnector) {
		fmt.Fprintf(w, "%s connector %s.\n", did, id)
		if v.Status == "disabled" {
			fmt.Fprintln(w, "It is disabled: its tools leave every list and its calls are refused; its tokens are kept.")
		}
		if did != "Updated" && len(v.Revoked) == 0 {
			return // a switch keeps the tokens, as the line above says
		}
		fmt.Fprintf(w, "Its tokens were %s.\n", strings.TrimSuffix(v.Tokens, "."))
		for _, r := range v.Revoked {
			printRevocation(w, r)
		}
	}
}
