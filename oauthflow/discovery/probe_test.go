package discovery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/oauthflow/egress"
)

// laterChallenge lets initialize, notifications and the end of a session
// through without a token and answers any other request without one with
// a 401 whose challenge names scope; the rest goes to protect. So do MCP
// servers that challenge only after the handshake.
func laterChallenge(scope string, protect func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		guarded := protect(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			var msg struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &msg)
			switch {
			case r.Method == http.MethodDelete || msg.Method == "initialize" || strings.HasPrefix(msg.Method, "notifications/"):
				next.ServeHTTP(w, r)
			case r.Method == http.MethodPost && r.Header.Get("Authorization") == "":
				w.Header().Set("WWW-Authenticate", `Bearer scope="`+scope+`"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
			default:
				guarded.ServeHTTP(w, r)
			}
		})
	}
}

// TestProbeFindsLaterChallenge checks that the scopes to ask for come
// from the first 401 challenge even when the upstream lets initialize
// through and challenges only the requests after it, not from the
// resource's scopes_supported; and that the probe's session is ended.
func TestProbeFindsLaterChallenge(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "notes"})
	as := testas.Start(t, testas.Options{Resource: up.URL, Scopes: []string{"notes:read", "notes:write", "admin"}})
	up.SetGuard(laterChallenge("notes:read", as.Protect))
	pol := egress.Policy{AllowLoopbackHTTP: true, Timeout: 5 * time.Second}
	res, err := Discover(context.Background(), egress.Client(pol), up.URL, Options{Policy: pol})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if !slices.Equal(res.Scopes, []string{"notes:read"}) {
		t.Fatalf("scopes %q, want the later challenge's", res.Scopes)
	}
	if res.Server.Issuer != as.Issuer {
		t.Fatalf("issuer %q, want %q", res.Server.Issuer, as.Issuer)
	}
	var methods []string
	session := ""
	for _, r := range up.Requests() {
		if r.Path != "/mcp" {
			continue
		}
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(r.Body, &msg)
		methods = append(methods, r.Method+" "+msg.Method)
		if s := r.Header.Get("Mcp-Session-Id"); s != "" {
			session = s
		}
	}
	want := []string{"POST initialize", "POST notifications/initialized", "POST tools/list", "DELETE "}
	if !slices.Equal(methods, want) || session == "" {
		t.Fatalf("the probe sent %q (session %q), want %q in one session", methods, session, want)
	}
}

// TestProbeStopsAtFirstChallenge checks that an upstream that challenges
// initialize gets no more probe requests.
func TestProbeStopsAtFirstChallenge(t *testing.T) {
	f := newFakeServer(t, map[string]reply{
		"/mcp": unauthorized(`Bearer scope="a"`),
		"/.well-known/oauth-protected-resource/mcp": {body: prm("{base}/mcp", "{base}")},
		"/.well-known/oauth-authorization-server":   {body: asDoc("{base}")},
	})
	res, err := f.discover("/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.requests(); got[0] != "POST /mcp" || slices.Contains(got[1:], "POST /mcp") || !slices.Equal(res.Scopes, []string{"a"}) {
		t.Fatalf("requests %q, scopes %q", got, res.Scopes)
	}
}
