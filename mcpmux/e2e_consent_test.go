package mcpmux_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
// consented to: a tool error carrying the connect URL, the URL
// elicitation error where a 2025-11-25 client declared URL-mode
// elicitation, or at 2026-07-28 an input-required result with a URL input
// request; and that after consent the same call succeeds (at 2026-07-28,
// retried with the gateway's requestState).
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
		{"2026-07-28 url elicitation", v20260728, elicitURL, false},
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
			input := c.modern() && tt.caps != nil
			switch {
			case input:
				params = consentInputRequired(t, r, params)
			case tt.elicit:
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
			default:
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
			// Other methods get a JSON-RPC error with the URL, or the
			// input request.
			if r := c.call("prompts/get", map[string]any{"name": "a_greet", "_meta": params["_meta"]}); input {
				consentInputRequired(t, r, params)
			} else if r.err == nil || !strings.Contains(r.err.Message, connectURL) {
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

// consentInputRequired checks a 2026-07-28 answer that asks for consent
// in band, and returns params for the retry: with the answer to the URL
// input request and the gateway's requestState.
func consentInputRequired(t *testing.T, r *rawReply, params map[string]any) map[string]any {
	t.Helper()
	var res struct {
		ResultType    string                      `json:"resultType"`
		InputRequests map[string]mcp.InputRequest `json:"inputRequests"`
		RequestState  string                      `json:"requestState"`
	}
	if r.result == nil || json.Unmarshal(r.result, &res) != nil || res.ResultType != "input_required" || len(res.InputRequests) != 1 || res.RequestState == "" {
		t.Fatalf("want an input-required result, got %d %s", r.status, r.body)
	}
	for key, req := range res.InputRequests {
		if req.Method != mcp.MethodElicitationCreate || req.Elicitation == nil || req.Elicitation.Mode != "url" || req.Elicitation.URL != connectURL {
			t.Fatalf("input request %s = %s", key, r.result)
		}
		retry := clone(params)
		retry["inputResponses"] = map[string]any{key: map[string]any{"action": "accept"}}
		retry["requestState"] = res.RequestState
		return retry
	}
	return nil
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

// TestGatewayRequestState checks the requestState the gateway issues with
// its consent input request: only the caller it was issued to may use it,
// only for the same request, only until it expires, and a tampered one is
// refused with -32602; a good one lets the retry through as the upstream
// would have seen it, with the upstream's own requestState, which the
// gateway's stood in for, restored and the gateway's input response gone.
func TestGatewayRequestState(t *testing.T) {
	t.Parallel()
	ups, conns := startUpstreams(t, testupstream.ModernOnly, "a")
	var consented atomic.Bool
	clock := &fakeClock{}
	g := startGateway(t, conns, everyone, clock.option(), func(o *mcpmux.Options) { o.Credentials = consentGate(&consented) })
	caps := map[string]any{mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}}
	alice := newRaw(t, g.URL+"/mcp", agentHeader("alice", ""))
	alice.version = v20260728
	bob := newRaw(t, g.URL+"/mcp", agentHeader("bob", ""))
	bob.version = v20260728
	params := map[string]any{"name": "a_echo", "arguments": map[string]any{"message": "hi"}, "_meta": caps,
		"requestState": "upstream-state-1", "inputResponses": map[string]any{"upstream-key": map[string]any{"action": "accept"}}}
	retry := consentInputRequired(t, alice.call("tools/call", params), params)
	consented.Store(true)

	state := retry["requestState"].(string)
	with := func(k string, v any) map[string]any { p := clone(retry); p[k] = v; return p }
	flip := []byte(state)
	flip[len(flip)-3] ^= 1
	for _, tc := range []struct {
		name   string
		c      *rawClient
		params map[string]any
	}{
		{"tampered", alice, with("requestState", string(flip))},
		{"truncated", alice, with("requestState", state[:len(state)-8])},
		{"not base64", alice, with("requestState", "mcpgate1.!!!")},
		{"another caller", bob, retry},
		{"another tool", alice, with("name", "a_delete_everything")},
	} {
		r := tc.c.call("tools/call", tc.params)
		if r.status != 400 || r.err == nil || r.err.Code != -32602 || !strings.Contains(r.err.Message, "requestState") {
			t.Errorf("%s: got %d %s, want 400 with -32602", tc.name, r.status, r.body)
		}
	}
	if n := countMethod(ups["a"], "tools/call"); n != 0 {
		t.Fatalf("refused retries reached the upstream %d times", n)
	}

	if r := alice.call("tools/call", retry); r.result == nil || strings.Contains(string(r.result), `"isError":true`) {
		t.Fatalf("the retry after consent: %d %s", r.status, r.body)
	}
	var sent struct {
		Params struct {
			RequestState   string         `json:"requestState"`
			InputResponses map[string]any `json:"inputResponses"`
		} `json:"params"`
	}
	for _, req := range ups["a"].Requests() {
		if strings.Contains(string(req.Body), `"tools/call"`) {
			_ = json.Unmarshal(req.Body, &sent)
		}
	}
	if sent.Params.RequestState != "upstream-state-1" || len(sent.Params.InputResponses) != 1 || sent.Params.InputResponses["upstream-key"] == nil {
		t.Errorf("the upstream got requestState %q and inputResponses %v, want its own state and response only",
			sent.Params.RequestState, sent.Params.InputResponses)
	}

	clock.advance(31 * time.Minute)
	if r := alice.call("tools/call", retry); r.status != 400 || r.err == nil || r.err.Code != -32602 {
		t.Errorf("expired: got %d %s, want 400 with -32602", r.status, r.body)
	}
}
