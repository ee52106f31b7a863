package mcpgate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// stepUpGuard protects an upstream the way MCP servers with step-up do:
// initialize, notifications and the end of a session need no token; any
// other request without one gets a 401 whose challenge names scope
// notes:read; a token must pass protect, and tools/call then wants
// notes:write (403 insufficient_scope) until writeOK is set.
func stepUpGuard(protect func(http.Handler) http.Handler, writeOK *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &msg)
			open := r.Method == http.MethodDelete || msg.Method == "initialize" || strings.HasPrefix(msg.Method, "notifications/")
			switch {
			case r.URL.Path != "/mcp" || r.Header.Get("Authorization") != "":
				protect(scopeCheck(msg.Method, writeOK, next)).ServeHTTP(w, r)
			case open:
				next.ServeHTTP(w, r)
			default:
				w.Header().Set("WWW-Authenticate", `Bearer scope="notes:read"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
			}
		})
	}
}

// scopeCheck refuses tools/call with insufficient_scope until writeOK.
func scopeCheck(method string, writeOK *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if method == "tools/call" && !writeOK.Load() {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="notes:write"`)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// startStepUpStack runs Caddy with mcpgate in front of one per-user OAuth
// connector "notes", whose upstream is guarded by stepUpGuard.
func startStepUpStack(t *testing.T, writeOK *atomic.Bool) {
	notes := testupstream.StartT(t, testupstream.Options{Name: "notes"})
	as := testas.Start(t, testas.Options{Resource: notes.URL, Scopes: []string{"notes:read", "notes:write", "notes:admin"}})
	notes.SetGuard(stepUpGuard(as.Protect, writeOK))
	dir := t.TempDir()
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
		public_url %s
		storage badger %s
		seal_key %s
		connector notes {
			url %s
			auth oauth {
				insecure_loopback
			}
		}
		grant {
			src *
			connectors notes
		}
	}
}
%s {
	handle /connect/client-metadata.json {
		mcpgate
	}
	handle {
		basic_auth {
%s		}
		mcpgate
	}
}
`, site, filepath.Join(dir, "db"), base64.StdEncoding.EncodeToString(key), notes.URL, site, basicAuthUsers(t, passwords))
	sitetest.NewTester(t, 0).InitServer(config, "caddyfile")
}

// consentScope runs a whole consent for alice at notes and returns the
// scope its authorization request asked for.
func consentScope(t *testing.T) string {
	t.Helper()
	authURL := connect(t, "alice", "notes")
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	callback := authorize(t, authURL, "alice")
	if resp, body := do(t, http.MethodGet, strings.TrimPrefix(callback, site), "alice", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	return u.Query().Get("scope")
}

// TestOAuthScopeStepUp checks scope selection and step-up against a real
// authorization server: the first consent asks for the scope of the
// upstream's first 401 although the upstream lets initialize through
// without a token (not its scopes_supported); a 403 insufficient_scope
// sends the agent to a consent that asks for the union of the old and
// new scopes; consents that keep asking for what the upstream keeps
// refusing stop after a bound, with the connector misconfigured rather
// than needing consent again; and once the upstream accepts, a person's
// consent makes calls work.
func TestOAuthScopeStepUp(t *testing.T) {
	var writeOK atomic.Bool
	startStepUpStack(t, &writeOK)
	if got := consentScope(t); got != "notes:read" {
		t.Fatalf("the first consent asks for %q, want the later 401 challenge's notes:read", got)
	}
	mustNeedConsent(t, echo(t, "alice", "notes"), "notes", "a call the upstream wants more scope for")
	// The first step-up was progress; the next three consents ask for
	// the same and are refused the same.
	for i := range 3 {
		if got := consentScope(t); got != "notes:read notes:write" {
			t.Fatalf("step-up consent %d asks for %q, want the union", i+1, got)
		}
		res := echo(t, "alice", "notes")
		if i < 2 {
			mustNeedConsent(t, res, "notes", "a call refused again")
		} else if !res.IsError {
			t.Fatal("the call past the limit worked")
		}
	}
	if st := statusOf(t, "alice", "notes"); st["status"] != "misconfigured" || !strings.Contains(fmt.Sprint(st["reason"]), "refused 3 consents in a row") {
		t.Fatalf("past the retry limit: %v", st)
	}
	writeOK.Store(true)
	consentScope(t)
	mustWork(t, echo(t, "alice", "notes"), "the call once the upstream accepts")
}
