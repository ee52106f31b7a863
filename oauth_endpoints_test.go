package mcpgate_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOAuthEndpoints checks the consent endpoints' guards through a real
// Caddy: who may connect, from where, to where the browser may be sent
// back, and what every page and answer carries.
func TestOAuthEndpoints(t *testing.T) {
	s := startOAuthStack(t)
	jsonBody := http.Header{"Content-Type": {"application/json"}}

	t.Run("cross-site requests are refused", func(t *testing.T) {
		for _, h := range []http.Header{
			{"Origin": {"https://evil.example"}},
			{"Sec-Fetch-Site": {"cross-site"}},
			{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://other.127.0.0.1.nip.io:9080"}},
			{"Origin": {"null"}, "Content-Type": {"application/x-www-form-urlencoded"}},
		} {
			for _, action := range []string{"connect", "disconnect"} {
				resp, body := do(t, http.MethodPost, "/connectors/notes/"+action, "alice", nil, h)
				if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("cross-site")) {
					t.Errorf("%s with %v: %d %s", action, h, resp.StatusCode, body)
				}
			}
		}
		if st := stats(t, s.notesAS); st.Authorizations != 0 || st.Revocations != 0 {
			t.Errorf("refused requests reached the authorization server: %+v", st)
		}
		// The gateway's own pages post same-origin; under their
		// no-referrer policy Chromium sends Origin: null with that.
		for _, h := range []http.Header{
			{"Origin": {site}, "Sec-Fetch-Site": {"same-origin"}},
			{"Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}},
			{"Origin": {site}},
		} {
			resp, body := do(t, http.MethodPost, "/connectors/notes/connect", "alice", nil, h)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("auth_url")) {
				t.Errorf("a same-origin connect with %v: %d %s", h, resp.StatusCode, body)
			}
		}
	})

	t.Run("redirect_url is confined to the gateway", func(t *testing.T) {
		for _, target := range []string{
			"https://evil.example/", "//evil.example/", "/\\evil.example", "https:evil.example",
			"http://127.0.0.1:9080@evil.example/", "http://127.0.0.1:9081/connectors", "javascript:alert(1)",
			"http://127.0.0.1:9080.evil.example/", "http://127.0.0.1:9080/connectors\r\nSet-Cookie: x=y",
		} {
			body, _ := json.Marshal(map[string]string{"redirect_url": target})
			resp, out := do(t, http.MethodPost, "/connectors/notes/connect", "alice", body, jsonBody)
			if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(out, []byte("redirect_url is not allowed")) {
				t.Errorf("redirect_url %q: %d %s", target, resp.StatusCode, out)
			}
		}
		body, _ := json.Marshal(map[string]string{"redirect_url": site + "/connectors"})
		if resp, out := do(t, http.MethodPost, "/connectors/notes/connect", "alice", body, jsonBody); resp.StatusCode != http.StatusOK {
			t.Errorf("redirect_url on the gateway: %d %s", resp.StatusCode, out)
		}
	})

	t.Run("a failed consent lands on its redirect_url", func(t *testing.T) {
		// The real authorization server refuses the request itself: with
		// prompt=none and no one signed in there, it sends the browser
		// back to the callback with error=login_required and the state.
		body, _ := json.Marshal(map[string]string{"redirect_url": site + "/connectors?from=app"})
		resp, out := do(t, http.MethodPost, "/connectors/notes/connect", "alice", body, jsonBody)
		var started struct {
			AuthURL string `json:"auth_url"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(out, &started) != nil {
			t.Fatalf("connect: %d %s", resp.StatusCode, out)
		}
		browser := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), site+"/connect/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		resp, err := browser.Get(started.AuthURL + "&prompt=none")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		callback := resp.Header.Get("Location")
		if !strings.Contains(callback, "error=") || !strings.Contains(callback, "state=") {
			t.Fatalf("the authorization server sent the browser to %q (%d), not back with an error", callback, resp.StatusCode)
		}
		resp, out = do(t, http.MethodGet, strings.TrimPrefix(callback, site), "alice", nil, nil)
		landed, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil {
			t.Fatalf("the callback answered %d %q %s", resp.StatusCode, resp.Header.Get("Location"), out)
		}
		q := landed.Query()
		if landed.Path != "/connectors" || q.Get("from") != "app" || q.Get("error") == "" || q.Get("error_description") == "" || q.Get("connected") != "" {
			t.Errorf("the browser lands on %s", landed)
		}
		if st := statusOf(t, "alice", "notes"); st["status"] != "needs_auth" {
			t.Errorf("alice's notes after the failed consent: %v", st)
		}
	})

	t.Run("a flow completed by someone else is refused", func(t *testing.T) {
		// Alice starts; bob, signed in as bob, completes it at the
		// authorization server and brings the callback to the gateway.
		callback := authorize(t, connect(t, "alice", "notes"), "bob")
		resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "bob", nil, nil)
		if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("another user")) {
			t.Fatalf("bob completing alice's flow: %d %s", resp.StatusCode, body)
		}
		if st := stats(t, s.notesAS); st.TokenRequests["authorization_code"] != 0 {
			t.Fatalf("the code was redeemed: %+v", st)
		}
		for _, user := range []string{"alice", "bob"} {
			if st := statusOf(t, user, "notes"); st["status"] != "needs_auth" {
				t.Errorf("%s's notes after the forwarded flow: %v", user, st)
			}
		}
		// Without a site identity the callback is not even considered.
		resp, _ = do(t, http.MethodGet, strings.TrimPrefix(callback, site), "", nil, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("an anonymous callback: %d", resp.StatusCode)
		}
	})

	t.Run("callback without or with a forged state", func(t *testing.T) {
		for _, q := range []string{"?code=x", "?code=x&state=forged", "?state=" + strings.Repeat("A", 40) + "&error=access_denied&redirect_url=https://evil.example"} {
			resp, body := do(t, http.MethodGet, "/connect/callback"+q, "alice", nil, nil)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !bytes.Contains(body, []byte("<html")) {
				t.Errorf("callback %s: %d %q %s", q, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
	})

	t.Run("shared consent is the admins'", func(t *testing.T) {
		for _, action := range []string{"connect", "disconnect"} {
			resp, body := do(t, http.MethodPost, "/connectors/team/"+action, "bob", nil, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("bob %s team: %d %s", action, resp.StatusCode, body)
			}
		}
		if st := statusOf(t, "bob", "team"); st["can_connect"] == true {
			t.Errorf("bob is offered to connect the shared connector: %v", st)
		}
		if st := statusOf(t, "alice", "team"); st["can_connect"] != true {
			t.Errorf("alice, an admin, is not offered to connect it: %v", st)
		}
	})

	t.Run("wrong methods and targets", func(t *testing.T) {
		for _, tt := range []struct {
			method, path string
			status       int
		}{
			{http.MethodGet, "/connectors/notes/connect", http.StatusMethodNotAllowed},
			{http.MethodGet, "/connectors/notes/disconnect", http.StatusMethodNotAllowed},
			{http.MethodPost, "/connect/callback", http.StatusMethodNotAllowed},
			{http.MethodPost, "/connectors/nope/connect", http.StatusNotFound},
			{http.MethodPost, "/connectors/notes/authorize", http.StatusNotFound},
			// mcpgate is no authorization server for agents.
			{http.MethodGet, "/.well-known/oauth-authorization-server", http.StatusOK},
			{http.MethodPost, "/register", http.StatusOK},
			{http.MethodGet, "/authorize", http.StatusOK},
			{http.MethodPost, "/token", http.StatusOK},
		} {
			resp, body := do(t, tt.method, tt.path, "alice", nil, nil)
			// Paths that are not mcpgate's fall through to Caddy's empty
			// 200: nothing answers as an authorization server.
			if resp.StatusCode != tt.status || (tt.status == http.StatusOK && len(body) != 0) {
				t.Errorf("%s %s: %d %s", tt.method, tt.path, resp.StatusCode, body)
			}
		}
	})

	t.Run("pages and answers are not cached or framed", func(t *testing.T) {
		for _, r := range []struct {
			method, path string
			header       http.Header
		}{
			{http.MethodGet, "/connectors", http.Header{"Accept": {"text/html"}}},
			{http.MethodGet, "/connectors", nil},
			{http.MethodPost, "/connectors/notes/connect", nil},
			{http.MethodGet, "/connect/callback?code=x", nil},
		} {
			resp, body := do(t, r.method, r.path, "alice", nil, r.header)
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s %s: headers %v", r.method, r.path, resp.Header)
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") &&
				!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("%s %s: CSP %q", r.method, r.path, resp.Header.Get("Content-Security-Policy"))
			}
			if bytes.Contains(body, []byte("Bearer")) || bytes.Contains(body, []byte("access_token")) {
				t.Errorf("%s %s shows a token: %s", r.method, r.path, body)
			}
		}
	})

	t.Run("client metadata document", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, "/connect/client-metadata.json", "", nil, nil)
		var doc struct {
			ClientID     string   `json:"client_id"`
			RedirectURIs []string `json:"redirect_uris"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		// A client ID metadata document's URL must be https to serve as a
		// client_id, so on this http site the document names none and
		// registration falls back to DCR.
		if doc.ClientID != "" || len(doc.RedirectURIs) != 1 || doc.RedirectURIs[0] != site+"/connect/callback" {
			t.Errorf("document %s", body)
		}
		if bytes.Contains(body, []byte("secret")) {
			t.Errorf("the document names a secret: %s", body)
		}
	})
}
