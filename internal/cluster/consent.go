package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/testas"
)

// Connect starts user's consent to connector at process p, as the
// Connectors page's button does, and returns the authorization URL.
func Connect(p *Process, user, connector string) (string, error) {
	resp, err := Send(http.MethodPost, p.URL+"/connectors/"+connector+"/connect", user, []byte(`{}`), nil)
	if err != nil {
		return "", err
	}
	var out struct {
		AuthURL string `json:"auth_url"`
	}
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &out) != nil || out.AuthURL == "" {
		return "", fmt.Errorf("%s connecting %s at %s: HTTP %d: %s", user, connector, p.Name, resp.Status, resp.Body)
	}
	return out.AuthURL, nil
}

// ClientID is the client_id an authorization URL names: the client the
// instance registered, or adopted.
func ClientID(authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	return u.Query().Get("client_id"), nil
}

// Authorize plays user's browser at the authorization server for authURL
// and returns the callback's path and query, which the server sends to
// the public URL, the balancer's.
func (c *Cluster) Authorize(t testing.TB, authURL, user string) string {
	t.Helper()
	callback := testas.Authorize(t, authURL, user, c.Balancer.URL+"/connect/callback?")
	return strings.TrimPrefix(callback, c.Balancer.URL)
}

// Callback brings user's browser back from the authorization server to
// process p with callback, a path and query from Authorize, and checks
// that it lands on the page that says connector is connected.
func Callback(p *Process, user, connector, callback string) error {
	resp, err := Send(http.MethodGet, p.URL+callback, user, nil, nil)
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK || !bytes.Contains(resp.Body, []byte("Connected "+connector)) {
		return fmt.Errorf("%s's callback for %s at %s: HTTP %d: %s", user, connector, p.Name, resp.Status, resp.Body)
	}
	return nil
}

// Consent runs user's whole consent to connector: started at start, the
// browser brought back to finish.
func (c *Cluster) Consent(t testing.TB, start, finish *Process, user, connector string) {
	t.Helper()
	authURL, err := Connect(start, user, connector)
	if err != nil {
		t.Fatal(err)
	}
	if err := Callback(finish, user, connector, c.Authorize(t, authURL, user)); err != nil {
		t.Fatal(err)
	}
}
