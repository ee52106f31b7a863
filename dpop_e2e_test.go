package mcpgate_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestDPoPEndToEnd: a real Caddy with mcpgate in front of an MCP upstream
// whose resource server accepts only DPoP-bound tokens with proofs and
// nonces (RFC 9449), behind a real authorization server that advertises
// DPoP and requires nonces. The connector says nothing of DPoP: the
// metadata turns it on. alice consents, calls, and calls again after her
// token expired and was refreshed; every call reaches the upstream with
// her token, and nothing but nonce challenges is refused.
func TestDPoPEndToEnd(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "notes"})
	as := testas.Start(t, testas.Options{Resource: up.URL, AccessTokenTTL: tokenTTL, DPoPNonce: true})
	up.SetGuard(as.Protect)
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
		public_url %[1]s
		storage badger %[2]s
		seal_key %[3]s
		connector notes {
			url %[4]s
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
%[1]s {
	handle /connect/client-metadata.json {
		mcpgate
	}
	handle {
		basic_auth {
%[5]s		}
		mcpgate
	}
}
`, site, filepath.Join(dir, "db"), base64.StdEncoding.EncodeToString(key), up.URL, basicAuthUsers(t, passwords))
	sitetest.NewTester(t, 0).InitServer(config, "caddyfile")

	consent(t, "alice", "notes")
	mustWork(t, echo(t, "alice", "notes"), "alice's first DPoP call")
	time.Sleep(tokenTTL + time.Second)
	mustWork(t, echo(t, "alice", "notes"), "alice's call after her token expired")

	st := stats(t, as)
	if st.TokenRequests["refresh_token"] < 1 || st.TokenRequests["authorization_code"] != 2 || st.TokenErrors["authorization_code"] != 1 {
		t.Fatalf("the server's token requests %v, refused %v: want a nonce challenge, the code exchange and a refresh", st.TokenRequests, st.TokenErrors)
	}
	if refusals := as.DPoPRefusals(); len(refusals) == 0 || slices.ContainsFunc(refusals, func(s string) bool { return !strings.Contains(s, "nonce") }) {
		t.Fatalf("the resource server's refusals %v: want nonce challenges only", refusals)
	}
	if seen := as.Seen(); len(seen) < 2 {
		t.Fatalf("the upstream saw %v", seen)
	}
}
