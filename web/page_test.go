package web_test

import (
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// listed is one connector of GET /connectors as the page tests read it.
type listed struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	Label     string `json:"status_label"`
	Hint      string `json:"hint"`
	Reason    string `json:"reason"`
	Group     string `json:"group"`
	ToolCount *int   `json:"tool_count"`
}

// pageRules grant alice the five connectors of the page site, bob one of
// them, and root, an admin, those and hidden.
var pageRules = []grants.Rule{
	{Sources: []string{"user:alice"}, Connectors: []string{"plain", "notes", "team", "down", "off"}},
	{Sources: []string{"user:bob"}, Connectors: []string{"plain"}},
	{Sources: []string{"user:root"}, Role: grants.RoleAdmin, Connectors: []string{"*"}},
}

// startPageSite is the site of a real gateway generation, built from a
// registry as the host builds it, so that each connector's status comes
// from its real credential source: plain is ready, notes (per-user
// consent) and team (shared) wait for a consent never given, down's
// upstream is gone, and off is disabled. A caller sees connectors in
// each group.
func startPageSite(t *testing.T) *site {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	oauth := func(id string, consent connectors.Consent) connectors.Config {
		as := "http://127.0.0.1:9/as" // never reached: no consent completes here
		return connectors.Config{ID: id, URL: up.URL, Auth: &connectors.AuthConfig{Type: connectors.AuthOAuth, OAuth: &connectors.OAuthConfig{
			Consent: consent, ClientID: "page-test", Issuer: as, AuthorizationEndpoint: as + "/authorize",
			TokenEndpoint: as + "/token", InsecureLoopback: true,
		}}}
	}
	reg, err := connectors.NewRegistry(connectors.Options{Config: []connectors.Config{
		{ID: "plain", URL: up.URL}, {ID: "hidden", URL: up.URL},
		oauth("notes", connectors.PerUser), oauth("team", connectors.Shared),
		{ID: "down", URL: gone.URL + "/mcp", Timeout: connectors.Duration(2 * time.Second)},
		{ID: "off", URL: up.URL, Disabled: true},
	}, Grants: pageRules})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(web.WithCaller(r.Context(), grants.Caller{ID: r.Header.Get("X-Test-User")}))
		s.h.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL
	g, err := gateway.Build(&gateway.Options{Logger: zap.NewNop(), ConnectKey: make([]byte, 32),
		OAuth: oauthflow.Options{Store: store.NewMemory(), PublicURL: s.URL, StateKey: make([]byte, 32)}}, reg.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	live := new(gateway.Live)
	live.Set(g)
	t.Cleanup(func() {
		s.srv.Close()
		live.Close()
	})
	s.h = g.Site()
	return s
}

// list reads GET /connectors+query as user.
func (s *site) list(t *testing.T, user, query string) map[string]listed {
	t.Helper()
	resp, body := s.do(t, "GET", "/connectors"+query, user, nil)
	var out struct {
		Connectors []listed `json:"connectors"`
	}
	if resp.StatusCode != http.StatusOK || jsonInto(body, &out) != nil || out.Connectors == nil {
		t.Fatalf("GET /connectors%s as %s: status %d: %s", query, user, resp.StatusCode, body)
	}
	got := map[string]listed{}
	for _, c := range out.Connectors {
		got[c.ID] = c
	}
	return got
}

// TestConnectorsStatusFilter: ?status= keeps the connectors of one group
// in the JSON list, each of which says its group; no filter, or all,
// keeps every one.
func TestConnectorsStatusFilter(t *testing.T) {
	s := startPageSite(t)
	for query, want := range map[string][]string{
		"":                        {"down", "hidden", "notes", "off", "plain", "team"},
		"?status=all":             {"down", "hidden", "notes", "off", "plain", "team"},
		"?status=active":          {"hidden", "plain"},
		"?status=needs_attention": {"down"},
		"?status=inactive":        {"notes", "off", "team"},
	} {
		got := s.list(t, "root", query)
		if !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
			t.Errorf("%q: %v, want %v", query, slices.Sorted(maps.Keys(got)), want)
		}
		group, _ := strings.CutPrefix(query, "?status=")
		for _, c := range got {
			if group != "" && group != "all" && c.Group != group {
				t.Errorf("%q lists %s of group %q", query, c.ID, c.Group)
			}
		}
	}
	// An empty group is an empty list, not null.
	if resp, body := s.do(t, "GET", "/connectors?status=needs_attention", "bob", nil); body != `{"connectors":[]}` {
		t.Errorf("bob's needs_attention: status %d: %s", resp.StatusCode, body)
	}
}

// TestConnectorsStatusFilterUnknown: an unknown filter is a 400 naming
// the allowed values, for JSON and for the page alike, and the gateway
// asks no upstream for it.
func TestConnectorsStatusFilterUnknown(t *testing.T) {
	s := startSite(t, true)
	for _, accept := range []string{"application/json", "text/html"} {
		for _, value := range []string{"ready", "Active", "needs-attention", "all,active"} {
			resp, body := s.do(t, "GET", "/connectors?status="+url.QueryEscape(value), "alice", nil, "Accept", accept)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s ?status=%s: status %d: %s", accept, value, resp.StatusCode, body)
			}
			if msg := errorOf(t, body); !strings.Contains(msg, "use all, active, needs_attention or inactive") {
				t.Errorf("%s ?status=%s: %q names no allowed value", accept, value, msg)
			}
		}
	}
}

// TestConnectorsLabels: each connector says its status in words, what
// to do about it, its title (the id when nothing gives one) and, once
// its tools could be listed, how many the caller may use.
func TestConnectorsLabels(t *testing.T) {
	s := startPageSite(t)
	alice, root := s.list(t, "alice", ""), s.list(t, "root", "")
	tests := []struct {
		got         listed
		label, hint string
	}{
		{alice["plain"], "Ready", ""},
		{alice["notes"], "Needs auth", "Connect your account to use it."},
		{alice["team"], "Needs auth", "It is shared and not connected yet: an admin connects it for everyone."},
		{root["team"], "Needs auth", "Connect it once for everyone: its consent is shared."},
		{root["down"], "Error", "The gateway cannot reach it right now. Try again later, and tell your admin if it lasts."},
		{alice["off"], "Disabled", "An admin turned it off: ask your admin if you need it."},
	}
	for _, tt := range tests {
		if tt.got.Label != tt.label || tt.got.Hint != tt.hint || tt.got.Title != tt.got.ID {
			t.Errorf("%s: label %q, hint %q, title %q; want %q, %q and its id", tt.got.ID, tt.got.Label, tt.got.Hint, tt.got.Title, tt.label, tt.hint)
		}
	}
	if n := alice["plain"].ToolCount; n == nil || *n == 0 {
		t.Errorf("plain's tool count for alice: %v, want the upstream's tools", n)
	}
	if alice["notes"].ToolCount != nil || root["down"].ToolCount != nil {
		t.Errorf("a tool count for a connector whose tools could not be listed: %v, %v", alice["notes"].ToolCount, root["down"].ToolCount)
	}
}

// TestConsentReason: the reason of a connector waiting for consent, the
// words an agent's call is answered with too, says why: here, that no
// one has connected it yet, and for a shared one that an admin must.
func TestConsentReason(t *testing.T) {
	s := startPageSite(t)
	alice := s.list(t, "alice", "")
	for _, tt := range []struct{ got, want string }{
		{alice["notes"].Reason, "Connector notes needs your consent: no one has connected it yet."},
		{alice["team"].Reason, "Connector team is shared: no one has connected it yet (an admin must connect it)."},
	} {
		if tt.got != tt.want {
			t.Errorf("reason %q, want %q", tt.got, tt.want)
		}
	}
}

// cardIDs are the connectors whose cards a page shows, in order: the
// mux's, by id.
var cardIDs = regexp.MustCompile(`<li id="connector-([a-z0-9-]+)"`)

// page reads the Connectors page at query as user.
func (s *site) page(t *testing.T, user, query string) string {
	t.Helper()
	resp, body := s.do(t, "GET", "/connectors"+query, user, nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the page%s as %s: status %d: %s", query, user, resp.StatusCode, body)
	}
	return body
}

// TestConnectorsPageFilter: the page shows the cards of the group its
// filter names, marks that filter current, counts each group, and says
// so when a group is empty; the filter is links, with no script.
func TestConnectorsPageFilter(t *testing.T) {
	s := startPageSite(t)
	for query, want := range map[string][]string{
		"":                        {"down", "hidden", "notes", "off", "plain", "team"},
		"?status=active":          {"hidden", "plain"},
		"?status=needs_attention": {"down"},
		"?status=inactive":        {"notes", "off", "team"},
	} {
		body := s.page(t, "root", query)
		var got []string
		for _, m := range cardIDs.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q shows %v, want %v", query, got, want)
		}
		current := strings.TrimPrefix(query, "?status=")
		if current == "" {
			current = "all"
		}
		if !strings.Contains(body, `id="filter-`+current+`" aria-current="page"`) || strings.Count(body, `aria-current="page"`) != 1 {
			t.Errorf("%q does not mark filter %s alone as current", query, current)
		}
	}
	body := s.page(t, "root", "")
	for group, count := range map[string]string{"all": "6", "active": "2", "needs_attention": "1", "inactive": "3"} {
		link := `<a href="?status=` + group + `" id="filter-` + group + `"`
		i := strings.Index(body, link)
		if i < 0 || !strings.Contains(body[i:i+200], `<span class="count">`+count+`</span>`) {
			t.Errorf("the filter has no link to %s counting %s", group, count)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
	body = s.page(t, "bob", "?status=needs_attention")
	if !strings.Contains(body, `id="empty"`) || !strings.Contains(body, "No connector is in this group.") || cardIDs.MatchString(body) {
		t.Errorf("an empty group's page: %s", body)
	}
}

// TestConnectorsPageCards: a card shows the title, the status label
// beside the status it stands for, the hint, the reason of a failure and
// the tool count; Connect only where the caller may connect.
func TestConnectorsPageCards(t *testing.T) {
	s := startPageSite(t)
	body := s.page(t, "root", "")
	for _, want := range []string{
		`<h2 class="title">plain</h2><span class="status ready" data-status="ready">Ready</span>`,
		`<h2 class="title">notes</h2><span class="status needs_auth" data-status="needs_auth">Needs auth</span>`,
		`<h2 class="title">down</h2><span class="status error" data-status="error">Error</span>`,
		`<p class="hint">Connect it once for everyone: its consent is shared.</p>`,
		`<dt>Tools</dt><dd class="tools">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if off := card(t, body, "off"); !strings.Contains(off, `data-status="disabled">Disabled</span>`) || strings.Contains(off, "<form") {
		t.Errorf("the disabled card is not labelled so, or offers a form: %s", off)
	}
	down := card(t, body, "down")
	if !strings.Contains(down, `<p class="why">`) || strings.Contains(down, "<form") {
		t.Errorf("down's card has no reason, or offers to connect: %s", down)
	}
	notes, team := card(t, s.page(t, "alice", ""), "notes"), card(t, s.page(t, "alice", ""), "team")
	if !strings.Contains(notes, `<button class="primary" type="submit" name="action" value="connect">Connect</button>`) {
		t.Errorf("alice's notes card offers no Connect: %s", notes)
	}
	if strings.Contains(team, "<form") {
		t.Errorf("alice may not connect team, shared, but her card offers to: %s", team)
	}
}

// card is connector id's card in a page.
func card(t *testing.T, page, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `<li id="connector-`+id+`"`)
	end := strings.Index(rest, "</li>")
	if !ok || end < 0 {
		t.Fatalf("the page has no card for %s: %s", id, page)
	}
	return rest[:end]
}

// styleHash matches a sha256 hash source in a CSP.
var styleHash = regexp.MustCompile(`'sha256-([A-Za-z0-9+/=]+)'`)

// TestPageCSP: a page's style applies because its CSP names the hash of
// the style element as rendered, not because the CSP allows any inline
// style; it still allows no script, no load and no framing. Both pages,
// the Connectors page and a consent's result page.
func TestPageCSP(t *testing.T) {
	s := startSite(t, true)
	resp, page := s.do(t, "GET", "/connectors", "alice", nil, "Accept", "text/html")
	_, result := s.do(t, "GET", "/connect/callback?state=forged&code=x", "alice", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the CSP lacks %s: %s", want, csp)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
		t.Errorf("the CSP allows inline style or scripts: %s", csp)
	}
	allowed := map[string]bool{}
	for _, m := range styleHash.FindAllStringSubmatch(csp, -1) {
		allowed[m[1]] = true
	}
	for name, body := range map[string]string{"connectors": page, "result": result} {
		_, rest, ok := strings.Cut(body, "<style>")
		css, _, closed := strings.Cut(rest, "</style>")
		sum := sha256.Sum256([]byte(css))
		if !ok || !closed || !allowed[base64.StdEncoding.EncodeToString(sum[:])] {
			t.Errorf("the %s page's style is not one the CSP names: %s", name, csp)
		}
		if strings.Contains(body, " style=") {
			t.Errorf("the %s page has a style attribute, which the CSP blocks", name)
		}
	}
}
