package mcpmux_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// TestFidelity compares what the upstream answers directly with what the
// gateway answers an agent, for every upstream era and agent era: tool
// definitions, tool results, resources and prompts must arrive with every
// field the upstream sent, unknown ones included.
func TestFidelity(t *testing.T) {
	t.Parallel()
	for _, upEra := range []testupstream.Era{testupstream.LegacyOnly, testupstream.ModernOnly, testupstream.BothEras} {
		t.Run(upEra.String(), func(t *testing.T) {
			t.Parallel()
			up := testupstream.StartT(t, testupstream.Options{Name: "a", Era: upEra, BearerToken: upstreamAuth})
			g := startGateway(t, []*connectors.Connector{testConnector(t, "a", up, bearer)}, everyone)
			d := direct(t, up, upEra)
			upTools := entriesOf(t, d.result("tools/list", nil), "tools")
			for _, era := range rawEras {
				t.Run(era.Name, func(t *testing.T) {
					// The gateway reaches an upstream in the agent's own era
					// when the upstream speaks it, so that is the era of the
					// direct answer to compare with.
					d := d
					if upEra == testupstream.BothEras {
						d = dialRaw(t, up.URL, http.Header{"Authorization": {"Bearer " + upstreamAuth}}, era.version)
					}
					c := dialRaw(t, g.URL+"/mcp", agentHeader("alice", ""), era.version)
					compareTools(t, upTools, entriesOf(t, c.result("tools/list", nil), "tools"), "a_")
					one := dialRaw(t, g.URL+"/connectors/a/mcp", agentHeader("alice", ""), era.version)
					compareTools(t, upTools, entriesOf(t, one.result("tools/list", nil), "tools"), "")

					for _, tc := range []struct {
						method   string
						params   map[string]any
						wireName string
					}{
						{"tools/call", map[string]any{"name": "rich", "arguments": map[string]any{"mode": "fast"}}, "a_rich"},
						{"tools/call", map[string]any{"name": "extension"}, "a_extension"},
						{"tools/call", map[string]any{"name": "fail"}, "a_fail"},
						{"resources/read", map[string]any{"uri": "test://a/logo.png"}, ""},
						{"resources/read", map[string]any{"uri": "test://a/readme"}, ""},
						{"resources/read", map[string]any{"uri": "test://a/items/42"}, ""},
						{"prompts/get", map[string]any{"name": "greet", "arguments": map[string]any{"who": "ünï ✓"}}, "a_greet"},
						{"prompts/get", map[string]any{"name": "plain"}, "a_plain"},
					} {
						want := d.result(tc.method, tc.params)
						if upEra == testupstream.LegacyOnly && era.version == v20260728 {
							want = bridgedResult(t, tc.method, want)
						}
						params := tc.params
						if tc.wireName != "" {
							params = clone(tc.params)
							params["name"] = tc.wireName
						}
						got := c.result(tc.method, params)
						if !sameJSON(t, want, got) {
							t.Errorf("%s %v:\nupstream %s\ngateway  %s", tc.method, tc.params, want, got)
						}
						if got := one.result(tc.method, tc.params); !sameJSON(t, want, got) {
							t.Errorf("scoped %s %v:\nupstream %s\ngateway  %s", tc.method, tc.params, want, got)
						}
					}
					ext := c.result("tools/call", map[string]any{"name": "a_extension"})
					if !bytes.Contains(ext, []byte(testupstream.ExtensionResultMember)) {
						t.Errorf("extension result lost %s: %s", testupstream.ExtensionResultMember, ext)
					}
					var fail struct {
						IsError bool `json:"isError"`
					}
					if json.Unmarshal(c.result("tools/call", map[string]any{"name": "a_fail"}), &fail); !fail.IsError {
						t.Error("fail: isError is not true")
					}
					rich := c.result("tools/call", map[string]any{"name": "a_rich"})
					if !bytes.Contains(rich, []byte("12345678901234567890")) || !bytes.Contains(rich, []byte(`"isError":false`)) {
						t.Errorf("rich result changed: %s", rich)
					}
				})
			}
		})
	}
}

// compareTools checks that every upstream tool arrives as the upstream
// defined it, under its wire name, and nothing else but the built-in tool.
func compareTools(t *testing.T, upstream, gateway []json.RawMessage, prefix string) {
	t.Helper()
	var own []json.RawMessage
	for _, e := range gateway {
		if !bytes.Contains(e, []byte(`"name":"mcpgate_list_connectors"`)) {
			own = append(own, e)
		}
	}
	if len(own) != len(upstream) {
		t.Fatalf("gateway lists %d tools, upstream %d", len(own), len(upstream))
	}
	sawExtension := false
	for i := range upstream {
		want, got := decode(t, upstream[i]).(map[string]any), decode(t, own[i]).(map[string]any)
		name, wire := want["name"].(string), got["name"].(string)
		if wire != prefix+name && !(len(prefix+name) > 64 && len(wire) <= 64 && strings.HasPrefix(wire, prefix)) {
			t.Errorf("tool %q is named %q", name, wire)
		}
		got["name"] = name
		if !reflect.DeepEqual(want, got) {
			t.Errorf("tool %s:\nupstream %s\ngateway  %s", name, upstream[i], own[i])
		}
		sawExtension = sawExtension || bytes.Contains(own[i], []byte(testupstream.ExtensionToolMember))
	}
	if !sawExtension {
		t.Errorf("no tool definition kept %s", testupstream.ExtensionToolMember)
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// bridgedResult is a legacy upstream's result as a 2026-07-28 agent must
// get it: with a resultType, and a read with caching hints that keep it
// nowhere, since the upstream gave none.
func bridgedResult(t *testing.T, method string, result json.RawMessage) json.RawMessage {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(result))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["resultType"] = "complete"
	if method == "resources/read" {
		m["ttlMs"], m["cacheScope"] = 0, "private"
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
