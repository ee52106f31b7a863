package mcpmux_test

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/redact"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestCredentialCustody checks that an agent's Authorization and cookies
// never reach an upstream, and that the connector's own credential, a
// bearer token or a custom header, always does.
func TestCredentialCustody(t *testing.T) {
	t.Parallel()
	const headerValue = "connector-canary"
	bear := testupstream.StartT(t, testupstream.Options{Name: "bear", BearerToken: upstreamAuth})
	hdr := testupstream.StartT(t, testupstream.Options{Name: "hdr", Era: testupstream.LegacyOnly, HeaderName: "X-Test-Canary", HeaderValue: headerValue})
	g := startGateway(t, []*connectors.Connector{
		testConnector(t, "bear", bear, bearer),
		testConnector(t, "hdr", hdr, connectors.Auth{Type: connectors.AuthHeader, Name: "X-Test-Canary", Value: headerValue}),
	}, everyone)

	// whoami repeats X-Test-Canary, the hdr connector's credential: the
	// marker in its place shows that the header arrived and that its echo
	// did not (the requests below show the value itself arrived).
	whoami := map[string]string{
		"bear_whoami": "authorization=present x-test-canary=",
		"hdr_whoami":  "authorization=absent x-test-canary=" + redact.Marker,
	}
	for _, era := range eras {
		t.Run(era.Name, func(t *testing.T) {
			c := g.connect(t, "/mcp", "alice", "", era.Opts...)
			toolNames(t, c)
			for name, want := range whoami {
				res, err := callTool(t, c, name, nil)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := res.Content[0].(mcp.TextContent).Text; got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if _, err := c.ListResources(ctxT(t), mcp.ListResourcesRequest{}); err != nil {
				t.Fatal(err)
			}
			req := mcp.GetPromptRequest{}
			req.Params.Name, req.Params.Arguments = "hdr_greet", map[string]string{"who": "x"}
			if _, err := c.GetPrompt(ctxT(t), req); err != nil {
				t.Fatal(err)
			}
			one := g.connect(t, "/connectors/hdr/mcp", "alice", "", era.Opts...)
			if _, err := callTool(t, one, "echo", map[string]any{"message": "x"}); err != nil {
				t.Fatal(err)
			}
		})
	}

	for _, up := range []struct {
		name string
		srv  *testupstream.Server
		auth string // the Authorization every request must carry
	}{{"bear", bear, "Bearer " + upstreamAuth}, {"hdr", hdr, ""}} {
		reqs := up.srv.Requests()
		if len(reqs) == 0 {
			t.Fatalf("%s got no requests", up.name)
		}
		for _, r := range reqs {
			if got := r.Header.Get("Authorization"); got != up.auth {
				t.Errorf("%s: Authorization %q, want %q", up.name, got, up.auth)
			}
			if up.name == "hdr" && r.Header.Get("X-Test-Canary") != headerValue {
				t.Errorf("hdr: request without the connector's header: %v", r.Header)
			}
			if _, ok := r.Header["Cookie"]; ok {
				t.Errorf("%s: a Cookie reached the upstream", up.name)
			}
			for k, vs := range r.Header {
				if strings.HasPrefix(k, "X-Test-User") || strings.HasPrefix(k, "X-Test-Groups") {
					t.Errorf("%s: the agent's %s reached the upstream", up.name, k)
				}
				for _, v := range vs {
					if strings.Contains(v, agentSecret) || strings.Contains(v, agentCookie) {
						t.Errorf("%s: header %s carries the agent's secret", up.name, k)
					}
				}
			}
			if body := string(r.Body); strings.Contains(body, agentSecret) || strings.Contains(body, agentCookie) {
				t.Errorf("%s: a body carries the agent's secret: %s", up.name, body)
			}
		}
	}
}
