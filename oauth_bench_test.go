package mcpgate_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// BenchmarkOAuthCall measures an agent's stateless tools/call through
// mcpgate to an OAuth connector, against the same call made directly to
// the upstream with the token mcpgate injects, in the same run. The
// upstream checks every token at the authorization server, on both
// paths alike. Run it with
//
//	go test -run '^$' -bench OAuthCall -benchtime 2000x .
func BenchmarkOAuthCall(b *testing.B) {
	s := startOAuthStack(b)
	// team's tokens live an hour; notes' expire within the run.
	consent(b, "alice", "team")
	mustWorkTB(b, callRaw(b, "alice", "team_echo"))
	var token string
	for _, r := range s.team.Requests() {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			token = h
		}
	}

	version := mcp.ProtocolVersion20260728
	params, _ := json.Marshal(map[string]any{
		"name": "echo", "arguments": map[string]any{"message": "bench"},
		"_meta": map[string]any{
			mcp.MetaKeyProtocolVersion:    version,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "bench", "version": "1"},
			mcp.MetaKeyClientCapabilities: map[string]any{},
		},
	})
	direct, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": json.RawMessage(params)})
	viaGateway := bytes.Replace(direct, []byte(`"name":"echo"`), []byte(`"name":"team_echo"`), 1)
	client := &http.Client{}
	post := func(b *testing.B, url, auth, name string, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", auth)
		req.Header.Set(mcp.HeaderProtocolVersion, version)
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", name)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "bench") {
			b.Fatalf("%s: %d %s", url, resp.StatusCode, out)
		}
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			post(b, s.team.URL, token, "echo", direct)
		}
	})
	b.Run("mcpgate", func(b *testing.B) {
		for b.Loop() {
			post(b, site+"/mcp", basic("alice"), "team_echo", viaGateway)
		}
	})
}

// mustWorkTB fails unless a raw tools/call answer is a successful result.
func mustWorkTB(t testing.TB, body []byte) {
	t.Helper()
	if bytes.Contains(body, []byte(`"isError":true`)) || !bytes.Contains(body, []byte(`"result"`)) {
		t.Fatalf("the call failed: %s", body)
	}
}
