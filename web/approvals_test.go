package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// hostile are arguments that would act on the page if they were not
// escaped.
const hostile = `{"note":"</pre><script>alert(1)</script><style>*{}</style>","q":"\" onmouseover=\"x"}`

// startApprovalSite is a site whose approvals service holds one pending
// request of alice's, with hostile arguments, and returns its id.
func startApprovalSite(t *testing.T, a web.Approvals) (*site, *approvals.Service, string) {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{})
	u, _ := url.Parse(up.URL)
	policy, err := grants.New(siteRules)
	if err != nil {
		t.Fatal(err)
	}
	mux, err := mcpmux.New(mcpmux.Options{Connectors: []*connectors.Connector{{ID: "plain", URL: u, Timeout: 2 * time.Second}}, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := store.NewRing([][]byte{bytes.Repeat([]byte{5}, 32)})
	svc, err := approvals.New(approvals.Options{Store: store.Seal(store.NewMemory(), ring), SelfApprove: a.SelfApprove})
	if err != nil {
		t.Fatal(err)
	}
	a.Service = func() *approvals.Service { return svc }
	s := &site{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			r = r.WithContext(web.WithCaller(r.Context(), grants.Caller{ID: u}))
		}
		s.h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { s.srv.Close(); _ = mux.Close() })
	s.URL = s.srv.URL
	s.h = web.New(web.Options{Mux: mux, Policy: policy, PublicURL: s.URL, Approvals: a})
	_, req, err := svc.Check(context.Background(), approvals.Binding{Caller: "alice", Connector: "plain", Tool: "delete_everything", Policy: "p"}, json.RawMessage(hostile))
	if err != nil {
		t.Fatal(err)
	}
	return s, svc, req.ID
}

// TestApprovalPage: an approver sees caller, connector, tool and the
// arguments, escaped, under the pages' CSP; anyone else gets 404 with no
// detail, as for an id that names nothing.
func TestApprovalPage(t *testing.T) {
	s, _, id := startApprovalSite(t, web.Approvals{})
	resp, body := s.do(t, "GET", "/approvals/"+id, "root", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approver: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`id="caller">alice<`, `id="connector">plain<`, `id="tool">delete_everything<`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", `id="approve"`, `action="/approvals/` + id + `/deny"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, `" onmouseover`) || strings.Count(body, "<style>") != 1 {
		t.Errorf("the arguments act on the page:\n%s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	for _, user := range []string{"alice", "bob", ""} {
		resp, body := s.do(t, "GET", "/approvals/"+id, user, nil)
		if resp.StatusCode == http.StatusOK || strings.Contains(body, "alert") || strings.Contains(body, "delete_everything") {
			t.Errorf("%q got %d %s", user, resp.StatusCode, body)
		}
	}
	if resp, _ := s.do(t, "GET", "/approvals/AAAAAAAAAAAAAAAAAAAAAA", "root", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown id: %d", resp.StatusCode)
	}
	if !web.Owns("/approvals/" + id) {
		t.Error("the host does not hand /approvals/ to the site")
	}
}

// TestApprovalDecide: the buttons approve and deny, from the gateway's
// own pages only; a caller never decides its own call unless SelfApprove;
// the approvers config names who decides.
func TestApprovalDecide(t *testing.T) {
	bob, _ := grants.CompileSources([]string{"user:bob", "user:alice"})
	s, svc, id := startApprovalSite(t, web.Approvals{Approvers: bob})
	form := "application/x-www-form-urlencoded"
	// root is an admin, but the approvers config names others.
	if resp, _ := s.do(t, "GET", "/approvals/"+id, "root", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("root, no approver: %d", resp.StatusCode)
	}
	resp, body := s.do(t, "GET", "/approvals/"+id, "alice", nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `id="approve"`) || !strings.Contains(body, `id="own"`) {
		t.Errorf("alice's own call offers her the buttons: %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do(t, "POST", "/approvals/"+id+"/approve", "alice", nil, "Content-Type", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice approved her own call: %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.do(t, "POST", "/approvals/"+id+"/approve", "bob", nil, "Content-Type", form, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site approval: %d", resp.StatusCode)
	}
	if r, _ := svc.Get(context.Background(), id); r.State != approvals.StatePending {
		t.Fatalf("state %s after refusals", r.State)
	}
	resp, _ = s.do(t, "POST", "/approvals/"+id+"/approve", "bob", nil, "Content-Type", form, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals/"+id+"?done=approved" {
		t.Fatalf("approve: %d %v", resp.StatusCode, resp.Header)
	}
	if r, _ := svc.Get(context.Background(), id); r.State != approvals.StateApproved || r.DecidedBy != "bob" {
		t.Fatalf("after approval: %+v", r)
	}
	if resp, _ := s.do(t, "POST", "/approvals/"+id+"/deny", "bob", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("deny after approval: %d", resp.StatusCode)
	}
}

// TestApprovalDenyJSON: a client that is not a browser denies with JSON,
// and the answer holds no arguments.
func TestApprovalDenyJSON(t *testing.T) {
	s, svc, id := startApprovalSite(t, web.Approvals{})
	resp, body := s.do(t, "POST", "/approvals/"+id+"/deny", "root", nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "alert") || !strings.Contains(body, `"state":"denied"`) {
		t.Fatalf("deny: %d %s", resp.StatusCode, body)
	}
	if r, _ := svc.Get(context.Background(), id); r.State != approvals.StateDenied {
		t.Fatalf("state %s", r.State)
	}
}

// TestApprovalSelfApprove: with SelfApprove, the caller may decide its
// own call.
func TestApprovalSelfApprove(t *testing.T) {
	all, _ := grants.CompileSources([]string{"*"})
	s, _, id := startApprovalSite(t, web.Approvals{Approvers: all, SelfApprove: true})
	if resp, body := s.do(t, "POST", "/approvals/"+id+"/approve", "alice", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("self approval: %d %s", resp.StatusCode, body)
	}
}

// TestConnectorsPagePendingApprovals: an approver's Connectors page lists
// the calls waiting; nobody else's does.
func TestConnectorsPagePendingApprovals(t *testing.T) {
	s, _, id := startApprovalSite(t, web.Approvals{})
	_, body := s.do(t, "GET", "/connectors", "root", nil, "Accept", "text/html")
	if !strings.Contains(body, `id="approval-`+id+`"`) || !strings.Contains(body, `href="/approvals/`+id+`"`) || strings.Contains(body, "alert") {
		t.Errorf("approver's page:\n%s", body)
	}
	if _, body := s.do(t, "GET", "/connectors", "alice", nil, "Accept", "text/html"); strings.Contains(body, "approval-") {
		t.Errorf("alice's page lists approvals:\n%s", body)
	}
}
