package mcpmux_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestAPIConnectors checks connectors that have an HTTP API: one that is
// only an API ("rest") and one that is both an MCP server and an API
// ("mix"). mcpgate_list_connectors lists each with its api path, and only
// MCP connectors with an mcp path; nothing of the gateway ever speaks MCP
// to an API: no list, fan-out, route, status or /connectors/{id}/mcp.
func TestAPIConnectors(t *testing.T) {
	t.Parallel()
	var apiHits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHits.Add(1)
		http.Error(w, "not an MCP server", http.StatusTeapot)
	}))
	t.Cleanup(api.Close)
	apiBase, _ := url.Parse(api.URL + "/v1")

	ups, conns := startUpstreams(t, testupstream.BothEras, "a", "mix")
	for _, c := range conns {
		if c.ID == "mix" {
			c.API = apiBase
		}
	}
	rest := &connectors.Connector{ID: "rest", API: apiBase, Auth: bearer}
	conns = append(conns, rest)
	consentURL := "https://gw.example.com/connectors?connect=rest"
	creds := func(ctx context.Context, req mcpmux.CredentialRequest) (mcpmux.Credential, error) {
		if req.Connector.ID == "rest" && req.Caller.ID == "carol" {
			return mcpmux.Credential{}, &mcpmux.ConsentRequired{Connector: "rest", Status: mcpmux.StatusNeedsAuth,
				URL: consentURL, Message: "Connector rest needs your consent."}
		}
		return mcpmux.StaticCredentials(ctx, req)
	}
	g := startGateway(t, conns, []grants.Rule{
		{Sources: []string{"user:alice"}, Connectors: []string{"*"}},
		{Sources: []string{"user:bob", "user:carol"}, Connectors: []string{"rest"}},
		{Sources: []string{"user:dave"}, Tools: []string{"rest/*"}},
	}, func(o *mcpmux.Options) { o.Credentials = creds })

	type status struct {
		ID, Status, MCP, API string
		ConnectURL           string `json:"connect_url"`
	}
	tests := []struct {
		user  string
		tools []string
		want  []status
	}{
		{"alice", []string{"a_echo", "mix_echo", "mcpgate_list_connectors"}, []status{
			{"a", mcpmux.StatusReady, "/connectors/a/mcp", "", ""},
			{"mix", mcpmux.StatusReady, "/connectors/mix/mcp", "/connectors/mix/api/", ""},
			{"rest", mcpmux.StatusReady, "", "/connectors/rest/api/", ""},
		}},
		// bob sees only an API: the built-in tool is still his way to
		// learn where it is.
		{"bob", []string{"mcpgate_list_connectors"}, []status{{"rest", mcpmux.StatusReady, "", "/connectors/rest/api/", ""}}},
		{"carol", []string{"mcpgate_list_connectors"}, []status{{"rest", mcpmux.StatusNeedsAuth, "", "/connectors/rest/api/", consentURL}}},
		// dave's grant names rest's tools, not the whole connector, which
		// its API takes: he sees it, without access.
		{"dave", []string{"mcpgate_list_connectors"}, []status{{"rest", mcpmux.StatusNoAccess, "", "/connectors/rest/api/", ""}}},
	}
	for _, era := range rawEras {
		for _, tt := range tests {
			t.Run(era.Name+"/"+tt.user, func(t *testing.T) {
				c := dialRaw(t, g.URL+"/mcp", agentHeader(tt.user, ""), era.version)
				tools := listed(t, c.result("tools/list", nil), "tools", "name")
				for _, want := range tt.tools {
					if !slices.Contains(tools, want) {
						t.Errorf("tools/list lacks %s: %v", want, tools)
					}
				}
				for _, name := range tools {
					if strings.HasPrefix(name, "rest_") {
						t.Errorf("tools/list has %s from an API-only connector", name)
					}
				}
				var res struct {
					Structured struct {
						Connectors []status `json:"connectors"`
					} `json:"structuredContent"`
				}
				r := c.call("tools/call", map[string]any{"name": "mcpgate_list_connectors", "arguments": map[string]any{}})
				if r.result == nil {
					t.Fatalf("mcpgate_list_connectors: %s", r.body)
				}
				decodeInto(t, r.result, &res)
				if !reflect.DeepEqual(res.Structured.Connectors, tt.want) {
					t.Errorf("connectors = %+v, want %+v", res.Structured.Connectors, tt.want)
				}
				// The wire form: an API-only connector has no mcp member.
				if tt.user == "bob" && bytes.Contains(r.result, []byte(`"mcp"`)) {
					t.Errorf("rest has an mcp path: %s", r.result)
				}

				// Routing by name or URI never reaches the API.
				if r := c.call("tools/call", map[string]any{"name": "rest_echo", "arguments": map[string]any{}}); !notGranted(r) {
					t.Errorf("rest_echo: %s", r.body)
				}
				if r := c.call("prompts/get", map[string]any{"name": "rest_greet"}); !notGranted(r) {
					t.Errorf("rest_greet: %s", r.body)
				}
				if r := c.call("resources/read", map[string]any{"uri": "mcpgate://rest/test://rest/readme"}); r.result != nil {
					t.Errorf("resources/read through rest: %s", r.body)
				}
				for _, kind := range []string{"resources/list", "resources/templates/list", "prompts/list"} {
					c.result(kind, nil)
				}
			})
		}
	}

	// The API-only connector has no MCP endpoint, whoever asks.
	for _, user := range []string{"alice", "bob"} {
		r := newRaw(t, g.URL+"/connectors/rest/mcp", agentHeader(user, "")).do(http.MethodPost,
			nil, 0, http.Header{"Content-Type": {"application/json"}})
		if r.status != http.StatusNotFound {
			t.Errorf("%s: POST /connectors/rest/mcp = %d %s, want 404", user, r.status, r.body)
		}
	}
	// The mixed connector's MCP side works as ever.
	one := dialRaw(t, g.URL+"/connectors/mix/mcp", agentHeader("alice", ""), v20260728)
	if tools := listed(t, one.result("tools/list", nil), "tools", "name"); !slices.Contains(tools, "echo") {
		t.Errorf("/connectors/mix/mcp lists %v", tools)
	}
	if n := apiHits.Load(); n != 0 {
		t.Errorf("the API received %d requests from the MCP side", n)
	}
	if len(ups["mix"].Requests()) == 0 {
		t.Error("the mixed connector's MCP upstream was never contacted")
	}
}
