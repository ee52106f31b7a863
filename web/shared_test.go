package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// tokenServer is an authorization server's token endpoint at /as/token
// that grants any code, naming the account admin@example.com in its
// answer, as some providers do.
func tokenServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/as/token" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"refresh_token": "rt", "scope": "read write", "sub": "u-1", "email": "admin@example.com"})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/as"
}

// connectAs completes a consent to connector id as user: the
// authorization server's redirect is the callback with the flow's state
// and a code.
func (s *site) connectAs(t *testing.T, id, user string) {
	t.Helper()
	resp, body := s.do(t, "POST", "/connectors/"+id+"/connect", user, nil)
	var out struct {
		AuthURL string `json:"auth_url"`
	}
	if resp.StatusCode != 200 || jsonInto(body, &out) != nil {
		t.Fatalf("connect %s as %s: %d %s", id, user, resp.StatusCode, body)
	}
	u, err := url.Parse(out.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"state": {u.Query().Get("state")}, "code": {"code-1"}}
	if resp, body := s.do(t, "GET", "/connect/callback?"+q.Encode(), user, nil); resp.StatusCode != 200 {
		t.Fatalf("callback of %s as %s: %d %s", id, user, resp.StatusCode, body)
	}
}

// TestSharedAccountHidden checks whose account a shared connection shows:
// an admin, who connected it, sees the account and the scopes; a user
// sees only that it is shared, in the JSON list and on the page, and
// never the admin's email.
func TestSharedAccountHidden(t *testing.T) {
	s := startSiteAt(t, true, tokenServer(t))
	s.connectAs(t, "shared", "root")
	type view struct {
		Account map[string]any `json:"account"`
		Scopes  []string       `json:"scopes"`
	}
	shown := func(user string) view {
		resp, body := s.do(t, "GET", "/connectors", user, nil)
		var out struct {
			Connectors []struct {
				ID string `json:"id"`
				view
			} `json:"connectors"`
		}
		if resp.StatusCode != 200 || jsonInto(body, &out) != nil {
			t.Fatalf("GET /connectors as %s: %d %s", user, resp.StatusCode, body)
		}
		for _, c := range out.Connectors {
			if c.ID == "shared" {
				return c.view
			}
		}
		t.Fatalf("GET /connectors as %s lists no shared: %s", user, body)
		return view{}
	}
	if v := shown("root"); v.Account["email"] != "admin@example.com" || !slices.Equal(v.Scopes, []string{"read", "write"}) {
		t.Errorf("the admin sees the shared connection as %+v, want the account and scopes", v)
	}
	if v := shown("alice"); v.Account["name"] != "shared connection" || len(v.Account) > 2 || v.Scopes != nil {
		t.Errorf("alice sees the shared connection as %+v, want only that it is shared", v)
	}
	_, page := s.do(t, "GET", "/connectors", "alice", nil, "Accept", "text/html")
	if !strings.Contains(page, `<dd class="account">shared connection</dd>`) || strings.Contains(page, "admin@example.com") {
		t.Errorf("alice's page does not hide the shared account: %s", page)
	}
}
