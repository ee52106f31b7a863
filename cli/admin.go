package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// maxAdminAnswer caps what the CLI reads of an answer.
const maxAdminAnswer = 16 << 20

// request sends body as JSON and returns the answer of a 2xx.
func (c *cli) request(method, uri string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, nil, rd)
	if err != nil {
		return nil, c.adminError(err)
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
}

// answerError matches what AdminAPIRequest makes of an answer of 400 or
// more: its status and body, which holds the admin API's {"error": …}.
var answerError = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d+): (.*)$`)

// adminError turns an error of AdminAPIRequest into the admin API's own
// message, or says that the endpoint could not be reached.
func (c *cli) adminError(err error) error {
	m := answerError.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("reaching the admin API at %s: %v (is Caddy running? say where with --address or --config)", c.addr, err)
	}
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &answer) != nil || answer.Error == "" {
		answer.Error = strings.TrimSpace(m[2])
	}
	return fmt.Errorf("%s (HTTP %s)", answer.Error, m[1])
}

// connectorURI is the admin URI of connector id, plus a sub-path and
// query.
func connectorURI(id, sub string, q url.Values) string {
	u := "/mcpgate/connectors/" + url.PathEscape(id) + sub
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// The admin API's words for a connector's credential and consent.
const (
	authBearer = "bearer"
	authHeader = "header"
	authOAuth  = "oauth"
	perUser    = "per_user"
)

// The admin API's JSON, as far as the CLI sends or reads it: the CLI
// depends on the API's wire format, never on mcpgate's Go types. Request
// fields keep the API's order, so that a body is what it always was.

// addConnectorRequest is the body of POST /mcpgate/connectors.
type addConnectorRequest struct {
	ID          string      `json:"id"`
	URL         string      `json:"url,omitempty"`
	API         string      `json:"api,omitempty"`
	Auth        *authConfig `json:"auth,omitempty"`
	MatchPreset *bool       `json:"match_preset,omitempty"`
	Title       string      `json:"title,omitempty"`
	Description string      `json:"description,omitempty"`
}

// authConfig is a connector's credential: a static one, or OAuth.
type authConfig struct {
	Type   string       `json:"type"`
	OAuth  *oauthConfig `json:"oauth,omitempty"`
	Token  string       `json:"token,omitempty"`
	Header string       `json:"header,omitempty"`
	Value  string       `json:"value,omitempty"`
}

// oauthConfig is a connector's OAuth client, as far as flags set it.
// Scopes go as one string, which the admin API splits.
type oauthConfig struct {
	Registration          string `json:"registration,omitempty"`
	Consent               string `json:"consent,omitempty"`
	Scopes                string `json:"scopes,omitempty"`
	Grant                 string `json:"grant,omitempty"`
	ClientID              string `json:"client_id,omitempty"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientKey             string `json:"client_key,omitempty"`
	ClientKeyID           string `json:"client_key_id,omitempty"`
	TokenAuthMethod       string `json:"token_auth_method,omitempty"`
	Audience              string `json:"audience,omitempty"`
	Resource              string `json:"resource,omitempty"`
	Issuer                string `json:"issuer,omitempty"`
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string `json:"token_endpoint,omitempty"`
	RegistrationEndpoint  string `json:"registration_endpoint,omitempty"`
	RevocationEndpoint    string `json:"revocation_endpoint,omitempty"`
	ClientName            string `json:"client_name,omitempty"`
	DPoP                  string `json:"dpop,omitempty"`
	InsecureLoopback      bool   `json:"insecure_loopback,omitempty"`
}

// registerRequest is the body of PUT /mcpgate/connectors/{id}/tools.
type registerRequest struct {
	Tools   []registerEntry `json:"tools"`
	Prompts []registerEntry `json:"prompts,omitempty"`
}

// registerEntry is one tool, or glob of tools, of a selection.
type registerEntry struct {
	Name      string `json:"name"`
	Operation string `json:"operation,omitempty"`
}

// approveRequest is the body of POST /mcpgate/connectors/{id}/tools/approve.
type approveRequest struct {
	Tools   []string `json:"tools,omitempty"`
	Prompts []string `json:"prompts,omitempty"`
}

// adminConnector is a connector as the admin API shows it.
type adminConnector struct {
	ID           string        `json:"id"`
	Source       string        `json:"source"`
	URL          string        `json:"url"`
	Auth         string        `json:"auth"`
	Consent      string        `json:"consent"`
	Registration string        `json:"registration"`
	Preset       string        `json:"preset"`
	Title        string        `json:"title"`
	Description  string        `json:"description"`
	Connection   *connection   `json:"connection"`
	Tools        *toolsSummary `json:"tools"`
}

// connectorsAnswer answers GET /mcpgate/connectors.
type connectorsAnswer struct {
	Connectors []listedConnector `json:"connectors"`
}

// connection is a connector's shared-consent connection.
type connection struct {
	State  string    `json:"state"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// toolsSummary is the size of a selection and the tools that drifted.
type toolsSummary struct {
	Registered     int      `json:"registered"`
	Drifted        []string `json:"drifted"`
	DriftedPrompts []string `json:"drifted_prompts"`
}

// updatedConnector answers PATCH /mcpgate/connectors/{id}.
type updatedConnector struct {
	adminConnector
	Status  string       `json:"status"`
	Tokens  string       `json:"tokens"`
	Revoked []revocation `json:"revoked"`
}

// addedConnector answers POST /mcpgate/connectors.
type addedConnector struct {
	adminConnector
	Grant        string `json:"grant"`
	ConnectURL   string `json:"connect_url"`
	AuthURL      string `json:"auth_url"`
	ConsentError string `json:"consent_error"`
}

// authURLAnswer answers a connect: where to consent.
type authURLAnswer struct {
	AuthURL string `json:"auth_url"`
}

// revocation says what became of a token at its provider.
type revocation struct {
	Attempted bool   `json:"attempted"`
	Revoked   bool   `json:"revoked"`
	Detail    string `json:"detail"`
}

// reconnectAnswer answers a reconnect.
type reconnectAnswer struct {
	AuthURL    string     `json:"auth_url"`
	Revocation revocation `json:"revocation"`
}

// removeAnswer answers DELETE /mcpgate/connectors/{id}.
type removeAnswer struct {
	Removed     string       `json:"removed"`
	Revocations []revocation `json:"revocations"`
}

// toolsAnswer is what the tools routes answer.
type toolsAnswer struct {
	Connector         string           `json:"connector"`
	Selection         []selectedTool   `json:"selection"`
	Discovered        []discoveredTool `json:"discovered"`
	Approved          []string         `json:"approved"`
	Prompts           []selectedTool   `json:"prompts"`
	DiscoveredPrompts []discoveredTool `json:"discovered_prompts"`
	ApprovedPrompts   []string         `json:"approved_prompts"`
}

// selectedTool is one tool or prompt of a selection, with what drifted
// upstream: each field changed, with its approved and upstream values.
type selectedTool struct {
	Name      string            `json:"name"`
	Operation string            `json:"operation"`
	Pin       string            `json:"pin"`
	Drift     map[string]change `json:"drift"`
}

// change is one field of a drifted definition, before and after.
type change struct {
	Approved json.RawMessage `json:"approved"`
	Upstream json.RawMessage `json:"upstream"`
}

// discoveredTool is one tool as the upstream lists it now.
type discoveredTool struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Operation   string `json:"operation"`
	Registered  bool   `json:"registered"`
	Drifted     bool   `json:"drifted"`
}

// diagnosis answers GET /mcpgate/connectors/{id}/diagnose.
type diagnosis struct {
	OK    bool   `json:"ok"`
	Steps []step `json:"steps"`
}

// step is one step of a diagnosis.
type step struct {
	Name   string `json:"step"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// grantsAnswer answers GET /mcpgate/grants.
type grantsAnswer struct {
	User       string           `json:"user"`
	Groups     []string         `json:"groups"`
	Admin      bool             `json:"admin"`
	Connectors []grantConnector `json:"connectors"`
}

// grantConnector is what a caller may do with one connector.
type grantConnector struct {
	ID      string          `json:"id"`
	Visible bool            `json:"visible"`
	Access  bool            `json:"access"`
	Tools   []grantDecision `json:"tools"`
}

// grantDecision is the decision on one tool, and the grant that made it.
type grantDecision struct {
	Tool      string `json:"tool"`
	Operation string `json:"operation"`
	Allowed   bool   `json:"allowed"`
	Rule      int    `json:"rule"`
	Source    string `json:"source"`
	GrantID   string `json:"grant_id"`
	Reason    string `json:"reason"`
	Grant     *struct {
		Sources []string `json:"src"`
	} `json:"grant"`
}

// auditAnswer answers GET /mcpgate/audit.
type auditAnswer struct {
	Events []auditEvent `json:"events"`
}

// auditEvent is one audit event.
type auditEvent struct {
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	User       string    `json:"user"`
	Connector  string    `json:"connector"`
	Tool       string    `json:"tool"`
	Decision   string    `json:"decision"`
	Outcome    string    `json:"outcome"`
	DurationMS float64   `json:"duration_ms"`
	Detail     string    `json:"detail"`
}

// presetsAnswer answers GET /mcpgate/presets.
type presetsAnswer struct {
	Presets []struct {
		ID        string `json:"id"`
		URL       string `json:"url"`
		Title     string `json:"title"`
		Source    string `json:"source"`
		HasClient bool   `json:"has_client"`
		// NeedsClient: the server registers no client of its own.
		NeedsClient bool `json:"needs_client"`
	} `json:"presets"`
}
