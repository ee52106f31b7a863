package mcpgate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
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
	unload := func() { _ = caddy.Load([]byte(`{"admin":{"listen":"localhost:2999"}}`), true) }
	t.Cleanup(unload)
	stack := &oauthStack{storeDir: filepath.Join(dir, "db"), sealKey: make([]byte, 32), serverLog: filepath.Join(dir, "caddy.log")}
	_, _ = rand.Read(stack.sealKey)
	config := fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	default_bind 127.0.0.1
	grace_period 1ns
	log {
		output file %[6]s
		level DEBUG
	}
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
`, site, stack.storeDir, base64.StdEncoding.EncodeToString(stack.sealKey), up.URL, basicAuthUsers(t, passwords), stack.serverLog)
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
	unload()
	dpopKeyNowhere(t, stack)
}

// dpopKeyNowhere finds the DPoP private key in the closed database, and
// fails if it, or the grant's tokens, are in Caddy's debug log or, in any
// encoding, in the database's files: it is sealed with the tokens.
func dpopKeyNowhere(t *testing.T, s *oauthStack) {
	t.Helper()
	var secrets [][]byte
	for _, v := range storedRecords(t, s) {
		var rec map[string]any
		if json.Unmarshal(v, &rec) != nil || rec["dpop_key"] == nil {
			continue
		}
		key, _ := rec["dpop_key"].(string)
		raw, err := base64.RawURLEncoding.DecodeString(key)
		if err != nil || len(raw) != 32 || rec["token_type"] != "DPoP" {
			t.Fatalf("the grant's dpop key is not a P-256 scalar, or its token type is %v", rec["token_type"])
		}
		secrets = append(secrets, []byte(key), raw, []byte(base64.StdEncoding.EncodeToString(raw)), []byte(hex.EncodeToString(raw)))
		for _, name := range []string{"access_token", "refresh_token"} {
			if tok, _ := rec[name].(string); tok != "" {
				secrets = append(secrets, []byte(tok))
			}
		}
	}
	if len(secrets) == 0 {
		t.Fatal("no grant holds a dpop key")
	}
	places := map[string][]byte{}
	logged, err := os.ReadFile(s.serverLog)
	if err != nil || len(logged) == 0 {
		t.Fatalf("Caddy's log: %v", err)
	}
	places["Caddy's log"] = logged
	_ = filepath.WalkDir(s.storeDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(path)
			places["database file "+d.Name()] = data
		}
		return nil
	})
	for name, data := range places {
		for _, secret := range secrets {
			if bytes.Contains(data, secret) {
				t.Errorf("%s holds the dpop key or a token (%d bytes)", name, len(secret))
			}
		}
	}
}
