package mcpgate_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// approvalCanary is in the arguments of the call that waits: no audit
// event, webhook notice or list without detail may hold it.
const approvalCanary = "approval-canary-5d1e"

// startApprovalCaddy runs a Caddy whose grant asks approval of bank's
// write tools, with bob the approver and a webhook at hook.
func startApprovalCaddy(t *testing.T, bank *testupstream.Server, hook string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	config := fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	default_bind 127.0.0.1
	grace_period 1ns
	mcpgate {
		public_url %[1]s
		storage badger %[2]s
		seal_key %[3]s
		approvers user:bob
		approval_webhook %[4]s
		connector bank {
			url %[5]s
		}
		grant {
			src *
			connectors bank
			approve write
		}
	}
}
%[1]s {
	basic_auth {
%[6]s	}
	mcpgate
}
`, site, dir, base64.StdEncoding.EncodeToString(key), hook, bank.URL, basicAuthUsers(t, passwords))
	sitetest.NewTester(t, 0).InitServer(config, "caddyfile")
}

// pageAs sends a request to the site as user, without following redirects.
func pageAs(t *testing.T, method, path, user string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, site+path, nil)
	req.Header.Set("Authorization", basic(user))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// slowCall calls bank_slow, a write tool, with arguments that hold the
// canary.
func slowCall(c *client.Client) (*mcp.CallToolResult, error) {
	return agenttest.Call(c, "bank_slow", map[string]any{"ms": 1, "note": approvalCanary})
}

// approvalOf calls bank_slow as c and returns the approval page its tool
// error names, failing on any other answer.
func approvalOf(t *testing.T, c *client.Client) string {
	t.Helper()
	res, err := slowCall(c)
	if err != nil || !res.IsError {
		t.Fatalf("want a tool error asking for approval, got %+v, %v", res, err)
	}
	s, _ := res.StructuredContent.(map[string]any)
	u, _ := s["approval_url"].(string)
	if s["status"] != "needs_approval" || !strings.HasPrefix(u, site+"/approvals/") {
		t.Fatalf("tool error %+v", res)
	}
	return strings.TrimPrefix(u, site)
}

// TestApprovalsInCaddy runs approvals through a real Caddy: a write call
// waits and the webhook hears of it without its arguments; the approver
// sees the page (the caller and others get 404) and approves with the
// page's form; the retry passes once; the admin API lists without
// arguments and approves the replay's request; the audit log has every
// step without the arguments; a read-only tool never asks.
func TestApprovalsInCaddy(t *testing.T) {
	bank := testupstream.StartT(t, testupstream.Options{Name: "bank"})
	notices := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		notices <- b
	}))
	t.Cleanup(hook.Close)
	startApprovalCaddy(t, bank, hook.URL+"/notify")
	alice := dial(t, "/mcp", "alice")

	if res, err := agenttest.Call(alice, "bank_echo", map[string]any{"message": "hi"}); err != nil || res.IsError {
		t.Fatalf("the read-only tool: %+v %v", res, err)
	}
	page := approvalOf(t, alice)
	id := strings.TrimPrefix(page, "/approvals/")
	select {
	case n := <-notices:
		var notice map[string]any
		if json.Unmarshal(n, &notice) != nil || notice["id"] != id || notice["url"] != site+page || notice["caller"] != "alice" || strings.Contains(string(n), approvalCanary) {
			t.Fatalf("webhook notice %s", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook notice")
	}

	if code, body := pageAs(t, "GET", page, "bob", nil); code != http.StatusOK || !strings.Contains(body, approvalCanary) || !strings.Contains(body, `id="approve"`) {
		t.Fatalf("bob's page: %d %s", code, body)
	}
	if code, body := pageAs(t, "GET", page, "alice", nil); code != http.StatusNotFound || strings.Contains(body, approvalCanary) {
		t.Fatalf("alice's page: %d %s", code, body)
	}
	if code, _ := pageAs(t, "GET", "/connectors", "bob", map[string]string{"Accept": "text/html"}); code != http.StatusOK {
		t.Fatalf("bob's connectors page: %d", code)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
	if code, _ := pageAs(t, "POST", page+"/approve", "bob", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Fatalf("a cross-site approval: %d", code)
	}
	if code, _ := pageAs(t, "POST", page+"/approve", "bob", form); code != http.StatusSeeOther {
		t.Fatalf("bob's approval: %d", code)
	}
	if res, err := slowCall(alice); err != nil || res.IsError {
		t.Fatalf("the retry after approval: %+v %v", res, err)
	}
	replay := strings.TrimPrefix(approvalOf(t, alice), "/approvals/")
	if replay == id {
		t.Fatal("a replay used the approval")
	}

	list := mustAdmin(t, 200, "GET", "/mcpgate/approvals", "")
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), approvalCanary) || !strings.Contains(string(raw), replay) {
		t.Fatalf("GET /mcpgate/approvals = %s", raw)
	}
	if got := mustAdmin(t, 200, "POST", "/mcpgate/approvals/"+url.PathEscape(replay)+"/approve", ""); got["approval"].(map[string]any)["decided_by"] != "admin" {
		t.Fatalf("admin approval = %v", got)
	}
	if res, err := slowCall(alice); err != nil || res.IsError {
		t.Fatalf("the retry after the admin's approval: %+v %v", res, err)
	}

	events := mustAdmin(t, 200, "GET", "/mcpgate/audit", "")
	raw, _ = json.Marshal(events)
	for _, kind := range []string{"approval_requested", "approval_approved", "approval_used"} {
		if !strings.Contains(string(raw), `"kind":"`+kind+`"`) {
			t.Errorf("the audit log has no %s", kind)
		}
	}
	if strings.Contains(string(raw), approvalCanary) {
		t.Errorf("the audit log holds the arguments: %s", raw)
	}
}
