package mcpmux

import (
	"encoding/json"
	"slices"
)

// builtinName is the gateway's own tool. No connector can take the id
// "mcpgate", so it can never clash with a connector's tool.
const builtinName = "mcpgate_list_connectors"

// builtinTool is its definition.
var builtinTool = json.RawMessage(`{"name":"` + builtinName + `","title":"List connectors",` +
	`"description":"Lists the connectors you may use through this gateway, with the status of each: ready, needs_auth, no_access, or error with a reason. ` +
	`mcp is the path of a connector's own MCP endpoint; api is the path under which a connector's HTTP API is called, with its credential added by the gateway.",` +
	`"inputSchema":{"type":"object","properties":{}},` +
	`"annotations":{"title":"List connectors","readOnlyHint":true,"openWorldHint":false}}`)

// callBuiltin answers mcpgate_list_connectors.
func (m *Mux) callBuiltin(x *exchange) *reply {
	if m.annotate != nil {
		m.annotate(x.r, "mcpgate", builtinName)
	}
	// A disabled connector is left out, as its items are from every
	// list: an agent has nothing to do with it until it is enabled.
	out := struct {
		Connectors []ConnectorStatus `json:"connectors"`
	}{slices.DeleteFunc(m.Statuses(x.ctx, x.caller), func(s ConnectorStatus) bool { return s.Status == StatusDisabled })}
	if out.Connectors == nil {
		out.Connectors = []ConnectorStatus{}
	}
	return structured(out)
}

// structured is a tool result of v, encoded as JSON: the gateway's own
// tools answer so.
func structured(v any) *reply {
	// The same JSON twice: structuredContent for clients that read it,
	// and as text for those that do not (Tools, "Structured Content": a
	// tool that returns structured content should also return it as a
	// TextContent block, for backwards compatibility).
	s, _ := json.Marshal(v)
	text, _ := json.Marshal(string(s))
	return &reply{result: json.RawMessage(`{"content":[{"type":"text","text":` + string(text) +
		`}],"structuredContent":` + string(s) + `}`)}
}
