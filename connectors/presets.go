package connectors

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Preset describes a well-known remote MCP server: where it is and what it
// is, so that an admin adding a connector for it need not know more than
// its URL. A preset from config may also carry an OAuth client; the
// built-in catalog never does.
type Preset struct {
	// ID names the preset; it follows the connector id grammar.
	ID string `json:"id"`
	// URL is the server's MCP endpoint.
	URL string `json:"url"`
	// Title and Description describe it to people.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// NeedsClient tells that the server registers no client on its own:
	// a connector for it needs an OAuth client of the operator's, given
	// in a preset of the same id or with the connector.
	NeedsClient bool `json:"needs_client,omitempty"`
}

// Catalog is the built-in preset catalog: public remote MCP servers. Most
// register clients on their own (DCR or CIMD), so a connector needs no
// more than the URL; those marked NeedsClient take an OAuth client that
// the operator registers with them (GitHub's OAuth apps, Box's Admin
// Console), given in a preset of the same id.
var Catalog = []Preset{
	{ID: "asana", URL: "https://mcp.asana.com/sse", Title: "Asana", Description: "Tasks, projects and goals"},
	{ID: "atlassian", URL: "https://mcp.atlassian.com/v1/mcp", Title: "Atlassian", Description: "Jira issues and Confluence pages"},
	{ID: "box", URL: "https://mcp.box.com", Title: "Box", Description: "Files, folders, search and Box AI", NeedsClient: true},
	{ID: "github", URL: "https://api.githubcopilot.com/mcp/", Title: "GitHub", Description: "Repositories, issues, pull requests and code", NeedsClient: true},
	{ID: "linear", URL: "https://mcp.linear.app/mcp", Title: "Linear", Description: "Issues, projects and cycles"},
	{ID: "notion", URL: "https://mcp.notion.com/mcp", Title: "Notion", Description: "Pages, databases and search"},
	{ID: "sentry", URL: "https://mcp.sentry.dev/mcp", Title: "Sentry", Description: "Errors, issues and releases"},
	{ID: "stripe", URL: "https://mcp.stripe.com", Title: "Stripe", Description: "Payments, customers, subscriptions and invoices"},
}

// SameServer reports whether two MCP endpoint URLs name the same server:
// equal but for the case of scheme and host, a default port and a
// trailing slash.
func SameServer(a, b string) bool {
	ua, err := url.Parse(a)
	if err != nil {
		return false
	}
	ub, err := url.Parse(b)
	if err != nil {
		return false
	}
	return canonical(ua) == canonical(ub)
}

// canonical is u with what SameServer ignores taken out.
func canonical(u *url.URL) string {
	return origin(u) + strings.TrimSuffix(u.EscapedPath(), "/") + "?" + u.RawQuery
}

// origin is u's scheme, host and port, in lower case and without a
// default port.
func origin(u *url.URL) string {
	host := strings.ToLower(u.Host)
	scheme := strings.ToLower(u.Scheme)
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.ToLower(u.Hostname())
	}
	return scheme + "://" + host
}

// preset is a preset ready to use: from the config, with its client, or
// built in.
type preset struct {
	Preset
	clientID, clientSecret string
	builtin                bool
}

// PresetView is a preset as the admin API and the site show it: no
// secret, only whether it has a client.
type PresetView struct {
	Preset
	// Source is "config" or "builtin".
	Source string `json:"source"`
	// HasClient tells whether connectors matching it get a static client.
	HasClient bool `json:"has_client"`
}

// mergePresets checks the config's presets, whose placeholders are
// resolved, and merges them over the built-in Catalog unless builtins is
// false, in id order.
func mergePresets(configured []PresetConfig, builtins bool) ([]preset, error) {
	byID := map[string]preset{}
	for _, p := range Catalog {
		if builtins {
			byID[p.ID] = preset{Preset: p, builtin: true}
		}
	}
	seen := map[string]bool{}
	for i, cfg := range configured {
		if err := ValidateID(cfg.ID); err != nil {
			return nil, fmt.Errorf("presets[%d]: %v", i, err)
		}
		if seen[cfg.ID] {
			return nil, fmt.Errorf("presets[%d]: preset %q is defined twice", i, cfg.ID)
		}
		seen[cfg.ID] = true
		if _, err := ParseURL(cfg.URL); err != nil {
			return nil, fmt.Errorf("preset %s: %v", cfg.ID, err)
		}
		if cfg.ClientSecret != "" && cfg.ClientID == "" {
			return nil, fmt.Errorf("preset %s: client_secret needs client_id", cfg.ID)
		}
		byID[cfg.ID] = preset{
			Preset:   Preset{ID: cfg.ID, URL: cfg.URL, Title: cfg.Title, Description: cfg.Description},
			clientID: cfg.ClientID, clientSecret: cfg.ClientSecret,
		}
	}
	return slices.SortedFunc(maps.Values(byID), func(x, y preset) int { return strings.Compare(x.ID, y.ID) }), nil
}

// Presets shows every preset, without secrets, in id order.
func (r *Registry) Presets() []PresetView {
	out := make([]PresetView, len(r.presets))
	for i, p := range r.presets {
		out[i] = PresetView{Preset: p.Preset, Source: "config", HasClient: p.clientID != ""}
		if p.builtin {
			out[i].Source = "builtin"
		}
	}
	return out
}

// matchPreset returns the preset whose URL names the same server as
// rawURL.
func (r *Registry) matchPreset(rawURL string) (preset, bool) {
	for _, p := range r.presets {
		if SameServer(p.URL, rawURL) {
			return p, true
		}
	}
	return preset{}, false
}

// applyTo gives e the preset's client, title and description where it
// has none of its own. A connector with no auth takes OAuth, as the
// catalog's servers all want.
func (p preset) applyTo(e *Entry) {
	e.Preset = p.ID
	e.Title = cmp.Or(e.Title, p.Title)
	e.Description = cmp.Or(e.Description, p.Description)
	cfg := &e.Config
	if cfg.Auth == nil {
		cfg.Auth = &AuthConfig{Type: AuthOAuth}
	}
	if cfg.Auth.Type != AuthOAuth || p.clientID == "" {
		return
	}
	if cfg.Auth.OAuth == nil {
		cfg.Auth.OAuth = new(OAuthConfig)
	}
	if cfg.Auth.OAuth.ClientID == "" {
		cfg.Auth.OAuth.ClientID, cfg.Auth.OAuth.ClientSecret = p.clientID, p.clientSecret
	}
}
