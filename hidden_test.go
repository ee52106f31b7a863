package mcpgate_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestHiddenConnectorsLookUnknown checks that a connector the caller may
// not see answers every request exactly as a connector that does not
// exist: the same status, headers and body, whatever the method, the
// endpoint or a cross-site Origin. Bob's grant names rest alone, so
// mcponly (an MCP server), keyed (an API) and both are hidden from him.
func TestHiddenConnectorsLookUnknown(t *testing.T) {
	startAPIGateway(t)
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	mcpHeader := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
	crossSite := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}}
	for _, hidden := range []string{"mcponly", "keyed", "both"} {
		for _, tail := range []string{"mcp", "api/users", "connect", "disconnect"} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
				for name, header := range map[string]http.Header{"agent": mcpHeader, "cross-site": crossSite} {
					t.Run(strings.Join([]string{hidden, tail, method, name}, " "), func(t *testing.T) {
						seen, seenBody := apiDo(t, method, "/connectors/"+hidden+"/"+tail, "bob", strings.NewReader(body), header)
						unknown, unknownBody := apiDo(t, method, "/connectors/nosuch/"+tail, "bob", strings.NewReader(body), header)
						if seen.StatusCode != unknown.StatusCode || string(seenBody) != string(unknownBody) {
							t.Errorf("hidden: %d %s; unknown: %d %s", seen.StatusCode, seenBody, unknown.StatusCode, unknownBody)
						}
						if seen.StatusCode != http.StatusNotFound && seen.StatusCode != http.StatusMethodNotAllowed && seen.StatusCode != http.StatusForbidden {
							t.Errorf("hidden connector answered %d %s", seen.StatusCode, seenBody)
						}
						if a, b := headerSet(seen.Header), headerSet(unknown.Header); !maps.EqualFunc(a, b, slices.Equal) {
							t.Errorf("headers differ:\nhidden:  %v\nunknown: %v", a, b)
						}
					})
				}
			}
		}
	}
}

// headerSet is h without the headers that differ between any two answers.
func headerSet(h http.Header) http.Header {
	out := h.Clone()
	out.Del("Date")
	return out
}
