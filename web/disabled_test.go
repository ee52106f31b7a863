package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestConnectDisabled checks that a connector an admin disabled starts
// no consent, for its user as for an admin under shared consent, from
// JSON as from the page's form, each told why; disconnecting it stays
// allowed.
func TestConnectDisabled(t *testing.T) {
	s := startSiteAt(t, true, "http://127.0.0.1:9/as", "notion", "shared")
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct{ id, user, contentType string }{
		{"notion", "alice", ""}, {"notion", "alice", form}, {"shared", "root", ""},
	} {
		var resp *http.Response
		var body string
		if tc.contentType == "" {
			resp, body = s.do(t, "POST", "/connectors/"+tc.id+"/connect", tc.user, nil)
		} else {
			resp, body = s.do(t, "POST", "/connectors/"+tc.id+"/connect", tc.user, strings.NewReader(""), "Content-Type", tc.contentType)
		}
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "connector "+tc.id+" is disabled by an admin") {
			t.Errorf("connect %s as %s (%s): %d %s", tc.id, tc.user, tc.contentType, resp.StatusCode, body)
		}
	}
	if resp, body := s.do(t, "POST", "/connectors/notion/disconnect", "alice", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("disconnect of the disabled notion: %d %s", resp.StatusCode, body)
	}
}
