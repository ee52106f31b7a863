package connectors

import (
	"net/url"
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
}

// Catalog is the built-in preset catalog: public remote MCP servers that
// register clients on their own (DCR or CIMD), so a connector needs no
// more than the URL.
var Catalog = []Preset{
	{ID: "asana", URL: "https://mcp.asana.com/sse", Title: "Asana", Description: "Tasks, projects and goals"},
	{ID: "atlassian", URL: "https://mcp.atlassian.com/v1/mcp", Title: "Atlassian", Description: "Jira issues and Confluence pages"},
	{ID: "linear", URL: "https://mcp.linear.app/mcp", Title: "Linear", Description: "Issues, projects and cycles"},
	{ID: "notion", URL: "https://mcp.notion.com/mcp", Title: "Notion", Description: "Pages, databases and search"},
	{ID: "sentry", URL: "https://mcp.sentry.dev/mcp", Title: "Sentry", Description: "Errors, issues and releases"},
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
	host := strings.ToLower(u.Host)
	scheme := strings.ToLower(u.Scheme)
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.ToLower(u.Hostname())
	}
	return scheme + "://" + host + strings.TrimSuffix(u.EscapedPath(), "/") + "?" + u.RawQuery
}
