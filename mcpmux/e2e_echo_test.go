package mcpmux_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/redact"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// The credentials the echo tests put on upstream requests. Their "/",
// "+", "=", "&", "<" and ">" make encoders escape them: mcp-go, like Go,
// writes "&", "<" and ">" as \u0026, \u003c and \u003e.
const (
	echoBearer = "static/Bearer+t0ken&<echo>=="
	echoAPIKey = "api-key/0123+4567&89ab=="
	echoOAuth  = "ya29.oauth/Access+T0ken<x>=="
)

// leakTools are tools of an upstream that repeat the credentials they were
// called with: in their text and structured content, in a JSON-RPC error,
// and in progress notifications. The upstream offers no GET stream (405,
// as a server may), so that a legacy session writes its progress on the
// call's own stream, ahead of the result; on the session's GET stream the
// result could overtake it and the count of notifications would be luck.
func leakTools(up *testupstream.Server) {
	up.SetGuard(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	up.MCP.AddTool(mcp.NewTool("leak"), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		seen := seenCredentials(req.Header)
		return mcp.NewToolResultStructured(map[string]any{"seen": seen, "auth": req.Header.Get("Authorization")}, "you sent "+seen), nil
	})
	up.MCP.AddTool(mcp.NewTool("leak_error"), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New("refusing " + seenCredentials(req.Header))
	})
	up.MCP.AddTool(mcp.NewTool("leak_progress"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
			return mcp.NewToolResultError("no progress token"), nil
		}
		if err := up.SendProgress(ctx, req.Params.Meta.ProgressToken, "working with "+seenCredentials(req.Header)); err != nil {
			return nil, err
		}
		return mcp.NewToolResultText("done"), nil
	})
}

// seenCredentials is what a careless upstream writes about its request:
// the Authorization and X-Api-Key headers, whole.
func seenCredentials(h http.Header) string {
	return fmt.Sprintf("Authorization=%q X-Api-Key=%q", h.Get("Authorization"), h.Get("X-Api-Key"))
}

// TestEchoedCredentialHidden checks that an agent never sees the
// credential the gateway put on an upstream request, whatever the
// upstream repeats it in: a tool's text, its structuredContent, a JSON-RPC
// error message, a progress notification on the response's SSE stream.
// It checks a static bearer token, an API-key header and a token from a
// credential source (OAuth in production), in both agent eras, and that
// the marker takes the credential's place.
func TestEchoedCredentialHidden(t *testing.T) {
	t.Parallel()
	bear := testupstream.StartT(t, testupstream.Options{Name: "bear", BearerToken: echoBearer})
	key := testupstream.StartT(t, testupstream.Options{Name: "key", HeaderName: "X-Api-Key", HeaderValue: echoAPIKey})
	oauth := testupstream.StartT(t, testupstream.Options{Name: "oauth", BearerToken: echoOAuth})
	for _, up := range []*testupstream.Server{bear, key, oauth} {
		leakTools(up)
	}
	g := startGateway(t, []*connectors.Connector{
		testConnector(t, "bear", bear, connectors.Auth{Type: connectors.AuthBearer, Token: echoBearer}),
		testConnector(t, "key", key, connectors.Auth{Type: connectors.AuthHeader, Name: "X-Api-Key", Value: echoAPIKey}),
		testConnector(t, "oauth", oauth, connectors.Auth{}),
	}, everyone, func(o *mcpmux.Options) {
		o.Credentials = func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
			if req.Connector.ID == "oauth" {
				return mcpmux.Credential{Key: "alice", Header: http.Header{"Authorization": {"Bearer " + echoOAuth}}}, nil
			}
			return mcpmux.StaticCredentials(ctx, req)
		}
	})
	secrets := map[string]string{"bear": echoBearer, "key": echoAPIKey, "oauth": echoOAuth}

	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
			c.result("tools/list", nil)
			for id, secret := range secrets {
				r := c.call("tools/call", map[string]any{"name": id + "_leak"})
				var res struct {
					Content           []mcp.TextContent
					StructuredContent map[string]string
				}
				if err := json.Unmarshal(r.result, &res); err != nil || len(res.Content) != 1 {
					t.Fatalf("%s_leak: %s", id, r.body)
				}
				if !strings.Contains(res.Content[0].Text, redact.Marker) || !strings.Contains(res.StructuredContent["seen"], redact.Marker) {
					t.Errorf("%s_leak: the marker is missing: %s", id, r.body)
				}
				if id != "key" && res.StructuredContent["auth"] != "Bearer "+redact.Marker {
					t.Errorf("%s_leak: auth = %q, want the scheme and the marker", id, res.StructuredContent["auth"])
				}
				assertHidden(t, id+"_leak", r.body, secret)

				r = c.call("tools/call", map[string]any{"name": id + "_leak_error"})
				if r.err == nil || !strings.Contains(r.err.Message, redact.Marker) {
					t.Errorf("%s_leak_error: want an error with the marker: %s", id, r.body)
				}
				assertHidden(t, id+"_leak_error", r.body, secret)

				r = c.call("tools/call", map[string]any{"name": id + "_leak_progress",
					"_meta": map[string]any{"progressToken": "p-" + id}})
				if len(r.notes) != 1 || !bytes.Contains(r.notes[0], []byte(redact.Marker)) {
					t.Errorf("%s_leak_progress: want one progress notification with the marker: %s", id, r.body)
				}
				assertHidden(t, id+"_leak_progress", r.body, secret)
			}
		})
	}
}

// assertHidden fails the test if an agent's whole HTTP answer shows the
// secret: as is, JSON-escaped the way Go or PHP write it, or in any
// string once decoded.
func assertHidden(t *testing.T, what string, body []byte, secret string) {
	t.Helper()
	goForm, _ := json.Marshal(secret)
	for _, form := range []string{secret, string(goForm[1 : len(goForm)-1]), strings.ReplaceAll(secret, "/", `\/`)} {
		if bytes.Contains(body, []byte(form)) {
			t.Errorf("%s: the agent sees the credential as %s: %s", what, form, body)
		}
	}
	for _, msg := range agentMessages(body) {
		var v any
		if err := json.Unmarshal(msg, &v); err != nil {
			t.Fatalf("%s: undecodable message %s: %v", what, msg, err)
		}
		walkStrings(v, func(s string) {
			if strings.Contains(s, secret) {
				t.Errorf("%s: a string the agent decodes holds the credential: %q", what, s)
			}
		})
	}
}

// agentMessages returns the JSON messages of an answer, SSE or plain.
func agentMessages(body []byte) []json.RawMessage {
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		return []json.RawMessage{trimmed}
	}
	return sseMessages(body)
}

// walkStrings calls fn with every string in a decoded JSON value, member
// names included.
func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range v {
			fn(k)
			walkStrings(e, fn)
		}
	}
}

// echoUpstream is a legacy MCP upstream written by hand, for what mcp-go
// never sends: the credential escaped the way PHP (\/) and .NET (\u002B,
// upper-case) write it, over SSE and in plain JSON, in an answer to the
// wrong id, and in the error that refuses the handshake.
type echoUpstream struct{ refuse bool }

func (up echoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var msg struct {
		ID     json.RawMessage
		Method string
		Params struct {
			Name string
			Meta struct {
				ProgressToken json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	php := strings.ReplaceAll(token, "/", `\/`)
	dotnet := strings.NewReplacer("+", `\u002B`, "=", `\u003D`, "&", `\u0026`).Replace(token)
	answer := func(member string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(msg.ID) + `,` + member + `}`))
	}
	switch {
	case msg.Method == "server/discover" || (up.refuse && msg.Method == "initialize"):
		answer(`"error":{"code":-32602,"message":"unsupported, and your token ` + php + ` is wrong"}`)
	case msg.Method == "initialize":
		w.Header().Set("Mcp-Session-Id", "echo-session")
		answer(`"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"echo","version":"1"}}`)
	case msg.ID == nil:
		w.WriteHeader(http.StatusAccepted)
	case msg.Method == "tools/list":
		answer(`"result":{"tools":[{"name":"php","inputSchema":{"type":"object"}},{"name":"dotnet","inputSchema":{"type":"object"}},{"name":"wrong_id","inputSchema":{"type":"object"}}]}`)
	case msg.Params.Name == "php":
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":" +
			string(msg.Params.Meta.ProgressToken) + `,"progress":1,"message":"using ` + php + `"}}` + "\n\n" +
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":" + string(msg.ID) + `,"result":{"content":[{"type":"text","text":"token=` + php +
			`;"}],"structuredContent":{"token":"` + php + `","n":1}}}` + "\n\n"))
	case msg.Params.Name == "dotnet":
		answer(`"error":{"code":-32000,"message":"bad token ` + dotnet + `","data":{"header":"Bearer ` + dotnet + `"}}`)
	default:
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"` + php + `","result":{}}`))
	}
}

// TestEchoedCredentialEscaped checks the forms of the credential a real
// encoder other than Go's writes, and the error messages the gateway
// builds from upstream text: a refused handshake's message, an answer to
// another request's id. A connector's status says the same as the error.
func TestEchoedCredentialEscaped(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(echoUpstream{})
	t.Cleanup(echo.Close)
	refusing := httptest.NewServer(echoUpstream{refuse: true})
	t.Cleanup(refusing.Close)
	g := startGateway(t, []*connectors.Connector{
		urlConnector(t, "echo", echo.URL, echoBearer),
		urlConnector(t, "refusing", refusing.URL, echoOAuth),
	}, everyone)

	for _, era := range rawEras {
		t.Run(era.Name, func(t *testing.T) {
			c := dialRaw(t, g.URL+"/connectors/echo/mcp", agentHeader("alice", ""), era.version)
			c.result("tools/list", nil)
			r := c.call("tools/call", map[string]any{"name": "php", "_meta": map[string]any{"progressToken": 7}})
			if !bytes.Contains(r.result, []byte(`"token":"`+redact.Marker+`","n":1`)) || len(r.notes) != 1 ||
				!bytes.Contains(r.notes[0], []byte("using "+redact.Marker)) {
				t.Errorf("php: want the marker in the result and the progress: %s", r.body)
			}
			assertHidden(t, "php", r.body, echoBearer)
			r = c.call("tools/call", map[string]any{"name": "dotnet"})
			if r.err == nil || r.err.Message != "bad token "+redact.Marker || string(r.err.Data) != `{"header":"Bearer `+redact.Marker+`"}` {
				t.Errorf("dotnet: want the marker in the error: %s", r.body)
			}
			assertHidden(t, "dotnet", r.body, echoBearer)
			r = c.call("tools/call", map[string]any{"name": "wrong_id"})
			if r.err == nil || !strings.Contains(r.err.Message, redact.Marker) {
				t.Errorf("wrong_id: want an error that shows the marker: %s", r.body)
			}
			assertHidden(t, "wrong_id", r.body, echoBearer)

			one := dialRaw(t, g.URL+"/connectors/refusing/mcp", agentHeader("alice", ""), era.version)
			r = one.call("tools/call", map[string]any{"name": "php"})
			if r.err == nil || !strings.Contains(r.err.Message, "is wrong") || !strings.Contains(r.err.Message, redact.Marker) {
				t.Errorf("refused handshake: want the upstream's message with the marker: %s", r.body)
			}
			assertHidden(t, "refused handshake", r.body, echoOAuth)
		})
	}
	statuses, _ := json.Marshal(g.mux.Statuses(context.Background(), grants.Caller{ID: "alice"}))
	assertHidden(t, "statuses", statuses, echoOAuth)
}

// urlConnector is a connector to the MCP server at raw with a bearer token.
func urlConnector(t *testing.T, id, raw, token string) *connectors.Connector {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &connectors.Connector{ID: id, URL: u, Timeout: 2 * time.Second, Auth: connectors.Auth{Type: connectors.AuthBearer, Token: token}}
}
