package mcpmux_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

const connectURL = "https://gw.example/connectors?connect=a"

// consentGate is a credential source that refuses until consented is set,
// as an OAuth source does before a user connects.
func consentGate(consented *atomic.Bool) mcpmux.Credentials {
	return func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
		if !consented.Load() {
			return mcpmux.Credential{}, &mcpmux.ConsentRequired{
				Connector: req.Connector.ID, Status: mcpmux.StatusNeedsAuth, URL: connectURL,
				Message: "Connector " + req.Connector.ID + " needs your consent.",
			}
		}
		return mcpmux.StaticCredentials(ctx, req)
	}
}

// TestConsentInBand checks what an agent gets from a connector it has not
// consented to: a tool error carrying the connect URL, or the URL
// elicitation error where the client declared URL-mode elicitation; and
// that after consent the same session's same call succeeds.
func TestConsentInBand(t *testing.T) {
	t.Parallel()
	elicitURL := map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}
	tests := []struct {
		name    string
		version string
		caps    map[string]any // the client's capabilities
		elicit  bool           // whether the answer must be the elicitation error
	}{
		{"2025-06-18 tool error", mcp.ProtocolVersion20250618, nil, false},
		{"2025-11-25 without url elicitation", v20251125, map[string]any{"elicitation": map[string]any{"form": map[string]any{}}}, false},
		{"2025-11-25 url elicitation", v20251125, elicitURL, true},
		{"2025-06-18 claims url elicitation", mcp.ProtocolVersion20250618, elicitURL, false},
		{"2026-07-28 tool error", v20260728, nil, false},
		{"2026-07-28 url elicitation", v20260728, elicitURL, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, conns := startUpstreams(t, testupstream.BothEras, "a")
			var consented atomic.Bool
			g := startGateway(t, conns, everyone, func(o *mcpmux.Options) { o.Credentials = consentGate(&consented) })
			c := newRaw(t, g.URL+"/mcp", agentHeader("alice", ""))
			c.version = tt.version
			caps := tt.caps
			if caps == nil {
				caps = map[string]any{}
			}
			if !c.modern() {
				c.version = ""
				r := c.call("initialize", map[string]any{"protocolVersion": tt.version, "capabilities": caps,
					"clientInfo": map[string]any{"name": "raw", "version": "1"}})
				c.version, c.session = tt.version, r.header.Get(mcp.HeaderSessionID)
				if c.session == "" {
					t.Fatalf("initialize: %d %s", r.status, r.body)
				}
			}
			params := map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}}
			if c.modern() {
				params["_meta"] = map[string]any{mcp.MetaKeyClientCapabilities: caps}
			}

			r := c.call("tools/call", params)
			if tt.elicit {
				if r.err == nil || r.err.Code != mcp.URL_ELICITATION_REQUIRED {
					t.Fatalf("want the URL elicitation error, got %d %s", r.status, r.body)
				}
				var data struct {
					Elicitations []mcp.ElicitationParams `json:"elicitations"`
				}
				if err := json.Unmarshal(r.err.Data, &data); err != nil || len(data.Elicitations) != 1 ||
					data.Elicitations[0].Mode != "url" || data.Elicitations[0].URL != connectURL || data.Elicitations[0].ElicitationID == "" {
					t.Fatalf("elicitation data = %s", r.err.Data)
				}
			} else {
				var res struct {
					IsError           bool              `json:"isError"`
					Content           []mcp.TextContent `json:"content"`
					StructuredContent map[string]string `json:"structuredContent"`
				}
				if r.result == nil || json.Unmarshal(r.result, &res) != nil || !res.IsError || len(res.Content) != 1 {
					t.Fatalf("want a tool error, got %d %s", r.status, r.body)
				}
				if !strings.Contains(res.Content[0].Text, connectURL) || res.StructuredContent["connect_url"] != connectURL ||
					res.StructuredContent["status"] != "needs_auth" {
					t.Fatalf("the tool error does not carry the connect URL: %s", r.result)
				}
			}
			// A list leaves the connector out instead of failing.
			if r := c.call("tools/list", nil); r.result == nil || strings.Contains(string(r.result), "a_echo") {
				t.Fatalf("tools/list before consent: %d %s", r.status, r.body)
			}
			// Other methods get a JSON-RPC error with the URL.
			if r := c.call("prompts/get", map[string]any{"name": "a_greet"}); r.err == nil ||
				!strings.Contains(r.err.Message, connectURL) {
				t.Fatalf("prompts/get before consent: %d %s", r.status, r.body)
			}

			consented.Store(true)
			r = c.call("tools/call", params)
			if r.result == nil || strings.Contains(string(r.result), `"isError":true`) {
				t.Fatalf("the call after consent: %d %s", r.status, r.body)
			}
		})
	}
}

// TestConsentStatus checks that the connector list tells a caller who must
// consent where to do it.
func TestConsentStatus(t *testing.T) {
	t.Parallel()
	_, conns := startUpstreams(t, testupstream.BothEras, "a")
	var consented atomic.Bool
	g := startGateway(t, conns, everyone, func(o *mcpmux.Options) { o.Credentials = consentGate(&consented) })
	c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), v20251125)
	var out struct {
		StructuredContent struct {
			Connectors []mcpmux.ConnectorStatus `json:"connectors"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(c.result("tools/call", map[string]any{"name": "mcpgate_list_connectors"}), &out); err != nil {
		t.Fatal(err)
	}
	got := out.StructuredContent.Connectors
	if len(got) != 1 || got[0].Status != mcpmux.StatusNeedsAuth || got[0].ConnectURL != connectURL {
		t.Fatalf("statuses = %+v", got)
	}
	consented.Store(true)
	if got := g.mux.Statuses(context.Background(), grants.Caller{ID: "alice"}); got[0].Status != mcpmux.StatusReady || got[0].ConnectURL != "" {
		t.Fatalf("after consent: %+v", got)
	}
}
