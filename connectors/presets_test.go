package connectors

import "testing"

func TestSameServer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://mcp.notion.com/mcp", "https://mcp.notion.com/mcp", true},
		{"https://mcp.notion.com/mcp", "HTTPS://MCP.Notion.com/mcp/", true},
		{"https://mcp.notion.com:443/mcp", "https://mcp.notion.com/mcp", true},
		{"https://mcp.notion.com/mcp", "https://mcp.notion.com/MCP", false},
		{"https://mcp.notion.com/mcp", "http://mcp.notion.com/mcp", false},
		{"https://mcp.notion.com/mcp", "https://mcp.notion.com.evil.test/mcp", false},
		{"https://mcp.notion.com/mcp", "https://mcp.notion.com/mcp?x=1", false},
		{"https://mcp.notion.com:8443/mcp", "https://mcp.notion.com/mcp", false},
		{"%zz", "https://mcp.notion.com/mcp", false},
	} {
		if got := SameServer(tc.a, tc.b); got != tc.same {
			t.Errorf("SameServer(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestCatalogIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Catalog {
		if err := ValidateID(p.ID); err != nil || seen[p.ID] {
			t.Errorf("preset %q: %v (duplicate: %v)", p.ID, err, seen[p.ID])
		}
		seen[p.ID] = true
		if _, err := ParseURL(p.URL); err != nil || p.Title == "" {
			t.Errorf("preset %s: %v, title %q", p.ID, err, p.Title)
		}
	}
}
