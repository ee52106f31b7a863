package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// TestConnectClientCredentials: Connect on a connector under the client
// credentials grant is a 409 that says it needs no consent, not a
// provider failure: there is nothing to consent to.
func TestConnectClientCredentials(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{})
	upURL, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	conns := []*connectors.Connector{{ID: "svc", URL: upURL, Auth: connectors.Auth{Type: connectors.AuthOAuth}, Timeout: 2 * time.Second}}
	policy, err := grants.New([]grants.Rule{{Sources: []string{"user:root"}, Role: grants.RoleAdmin, Connectors: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	mux, err := mcpmux.New(mcpmux.Options{Connectors: conns, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mux.Close() })
	var cfg oauthflow.Config
	cfg.Connector, cfg.Resource, cfg.Consent, cfg.Grant = "svc", up.URL, oauthflow.Shared, oauthflow.GrantClientCredentials
	cfg.ClientID, cfg.ClientSecret = "svc", "svc-secret"
	cfg.Issuer, cfg.TokenEndpoint, cfg.InsecureLoopback = "http://127.0.0.1:9/as", "http://127.0.0.1:9/as/token", true
	m, err := oauthflow.New(oauthflow.Options{Store: store.NewMemory(), PublicURL: "http://127.0.0.1:9", StateKey: make([]byte, 32)}, []oauthflow.Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	h := web.New(web.Options{Mux: mux, Policy: policy, PublicURL: "http://127.0.0.1:9/", ConnectTag: tag, Manager: m,
		OAuth: func(id string) (*oauthflow.Manager, oauthflow.Consent, bool) {
			consent, ok := m.Consent(id)
			return m, consent, ok
		}})
	req := httptest.NewRequest(http.MethodPost, "/connectors/svc/connect", nil)
	req = req.WithContext(web.WithCaller(req.Context(), grants.Caller{ID: "root"}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "client credentials grant") {
		t.Fatalf("connect: %d %s, want 409 saying it needs no consent", rec.Code, rec.Body.String())
	}
}
