package oauthflow

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// keyHarness is realHarness with the static client id authenticating by
// private_key_jwt with key.
func keyHarness(t *testing.T, upURL, id string, key crypto.Signer) *harness {
	t.Helper()
	return newHarness(t, func(_ *harness, _ *Options, cfgs *[]Config) {
		cfg := realConfig(t, upURL, nil)
		cfg.ClientID, cfg.ClientKey, cfg.ClientKeyID = id, testKeyPEM(t, key, false), "k1"
		(*cfgs)[0] = cfg
	})
}

// TestRealPrivateKeyJWT: against the real authorization server, a static
// client that authenticates with private_key_jwt (RFC 7523), by an EC key
// and by an RSA one, consents, refreshes and revokes its tokens, without
// any secret; the server took every assertion.
func TestRealPrivateKeyJWT(t *testing.T) {
	ecKey, rsaKey := newECKey(t, elliptic.P256()), newRSAKey(t, 2048)
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, KeyClients: []testas.KeyClient{
		{ID: "pk-ec", RedirectURI: publicURL + CallbackPath, Key: ecKey.Public(), KeyID: "k1"},
		{ID: "pk-rsa", RedirectURI: publicURL + CallbackPath, Key: rsaKey.Public(), KeyID: "k1"},
	}})
	up.SetGuard(as.Protect)
	ctx := context.Background()
	for id, key := range map[string]crypto.Signer{"pk-ec": ecKey, "pk-rsa": rsaKey} {
		h := keyHarness(t, up.URL, id, key)
		first := connectReal(t, h)
		if d := h.details("notion", "alice"); d.Client.Kind != RegistrationStatic || d.Client.ID != id || !d.Client.KeyStored ||
			d.Client.SecretStored || d.Client.AuthMethod != AuthMethodPrivateKeyJWT {
			t.Fatalf("%s: client %+v, want the static one, with its key stored", id, d.Client)
		}
		checkAudience(t, as, up.URL, first, up.URL)
		second := refreshAccess(t, h, first)
		checkAudience(t, as, up.URL, second, up.URL)
		rev, err := h.m.Disconnect(ctx, "notion", "alice", "test")
		if err != nil || !rev.Revoked {
			t.Fatalf("%s: Disconnect = %+v, %v; want the tokens revoked", id, rev, err)
		}
		if active, _, err := as.Active(ctx, second); err != nil || active {
			t.Fatalf("%s: the access token after the revocation: active %v, %v", id, active, err)
		}
	}
	st, err := as.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.TokenErrors["authorization_code"] + st.TokenErrors["refresh_token"]; n != 0 || st.Registrations != 0 || st.Revocations < 4 {
		t.Errorf("stats %+v: want no refused token request, no registration and every revocation", st)
	}
}

// TestRealPrivateKeyJWTWrongKey: when the authorization server no longer
// takes the client's key (an admin configured another one), the refresh
// it refuses with invalid_client leaves the connection misconfigured,
// telling an admin to check the client, not the user to reconnect; a
// consent under the wrong key fails, naming invalid_client. No key or
// assertion reaches the reason or the log.
func TestRealPrivateKeyJWTWrongKey(t *testing.T) {
	key, wrong := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	up := testupstream.StartT(t, testupstream.Options{Name: "a"})
	as := testas.Start(t, testas.Options{Resource: up.URL, KeyClients: []testas.KeyClient{
		{ID: "pk-ec", RedirectURI: publicURL + CallbackPath, Key: key.Public(), KeyID: "k1"},
	}})
	up.SetGuard(as.Protect)
	h := keyHarness(t, up.URL, "pk-ec", key)
	connectReal(t, h)
	wrongPEM := testKeyPEM(t, wrong, false)
	h.m.conns["notion"].cfg.ClientKey = wrongPEM // as a changed config would
	h.expire()

	_, err := h.token("notion", "alice")
	var ce *ConsentError
	if !errors.As(err, &ce) {
		t.Fatalf("Token = %v, want the connection to stop", err)
	}
	c := h.m.Connection(context.Background(), "notion", "alice")
	if c.State != connectors.StateMisconfigured || !strings.Contains(c.Reason, "invalid_client") || !strings.Contains(c.Reason, "ask an admin") {
		t.Fatalf("connection = %+v, want misconfigured by invalid_client", c)
	}

	authURL, err := h.m.Start(context.Background(), "notion", "alice", "")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cb, err := url.Parse(testas.Authorize(t, authURL, "alice", publicURL+CallbackPath))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.m.Callback(context.Background(), cb.Query(), "alice")
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("Callback under the wrong key = %v, want invalid_client", err)
	}
	for _, text := range []string{c.Reason, err.Error(), h.logText()} {
		assertNoKey(t, "the reason, the error or the log", text, wrongPEM)
		if strings.Contains(text, "eyJ") {
			t.Errorf("an assertion leaks: %q", text)
		}
	}
}
