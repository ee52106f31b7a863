package mcpmux

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// supportedVersions are the protocol versions the gateway serves agents,
// newest first.
var supportedVersions = []string{
	mcp.ProtocolVersion20260728,
	mcp.ProtocolVersion20251125,
	mcp.ProtocolVersion20250618,
	mcp.ProtocolVersion20250326,
}

// capabilities is what the gateway offers agents, whatever its upstreams
// offer: a list that no upstream fills is simply empty. They cannot
// depend on the upstreams: which connectors a caller sees changes with
// grants and consents, while capabilities are declared once. listChanged
// is true because the gateway tells listeners of every change they can
// see (changes.go).
const capabilities = `{"tools":{"listChanged":true},"resources":{"listChanged":true},"prompts":{"listChanged":true},"completions":{}}`

// serverInfo introduces the gateway to agents.
var serverInfo = `{"name":"mcpgate","title":"mcpgate","version":"` + Version + `"}`

// instructions tell an agent's model what the gateway is.
const instructions = "mcpgate serves the tools, resources and prompts of several MCP servers (connectors). " +
	"Tool and prompt names are prefixed with their connector's id. Call mcpgate_list_connectors to see the connectors and their status."

// removedMethods are the methods protocol version 2026-07-28 removed
// (SEP-2575): a stateless server has no handshake, no connection to ping,
// and no session to hold a log level, which each request now carries in
// _meta. Streamable HTTP, "Protocol Version Header": a method the server
// does not implement is 404 with -32601.
var removedMethods = map[string]bool{"initialize": true, "ping": true, "logging/setLevel": true,
	// subscriptions/listen's resourceSubscriptions replaced these.
	"resources/subscribe": true, "resources/unsubscribe": true}

// dispatch answers one request.
func (m *Mux) dispatch(x *exchange, msg *message) *reply {
	x.method, x.params = msg.method, msg.params
	if x.modern && removedMethods[msg.method] {
		return failure(errorf(codeMethodNotFound, "method %q was removed in protocol version %s", msg.method, mcp.ProtocolVersion20260728))
	}
	// serveMessage handles initialize outside a session; here it would be
	// a second handshake on an open one, or a 2026-07-28 request.
	if msg.method == "initialize" {
		return failure(errorf(codeInvalidRequest, "initialize may only open a session"))
	}
	// A list is the gateway's own ready answer (aggregate.go), never
	// input-required: nothing below need read it. One that carries a
	// requestState goes the long way, to have the state checked.
	if kind := listMethods[msg.method]; kind != nil && member(msg.params, "requestState") == nil {
		return m.serveList(x, kind)
	}
	if h := m.handler(msg.method); h != nil {
		// A legacy agent is asked mid-request, on its own stream; a
		// 2026-07-28 agent gets an input-required result and retries, with
		// the requestState that takeState opens.
		if !x.modern {
			return m.fulfil(x, h, h(x, x.params))
		}
		params, parked, rerr := m.takeState(x, msg.params)
		switch {
		case rerr != nil:
			return failure(rerr)
		case parked != nil:
			return m.shapeResult(x, m.resume(x, *parked, params))
		}
		x.params = params
		if inputRequired[x.method] {
			return m.shapeResult(x, checkInputRequests(x, m.parkable(x, h)))
		}
		return m.shapeResult(x, checkInputRequests(x, h(x, x.params)))
	}
	return failure(errorf(codeMethodNotFound, "method %q is not supported by mcpgate", msg.method))
}

// handler is the function that answers method, or nil when the gateway
// does not serve it. A method missing here is never forwarded, whatever
// the upstreams offer: deny by default holds for methods as for tools.
func (m *Mux) handler(method string) func(*exchange, []byte) *reply {
	switch method {
	case "ping":
		return func(*exchange, []byte) *reply { return &reply{result: json.RawMessage(`{}`)} }
	case "logging/setLevel":
		return setLevel
	case "server/discover":
		return func(*exchange, []byte) *reply { return m.discover() }
	case "tools/list":
		return m.lister(toolsKind)
	case "resources/list":
		return m.lister(resourcesKind)
	case "resources/templates/list":
		return m.lister(templatesKind)
	case "prompts/list":
		return m.lister(promptsKind)
	case "tools/call":
		return m.callTool
	case "prompts/get":
		return m.getPrompt
	case "resources/read":
		return m.readResource
	case "resources/subscribe":
		return m.subscribe
	case "resources/unsubscribe":
		return m.unsubscribe
	case "completion/complete":
		return m.complete
	}
	return nil
}

// setLevel keeps the log level a legacy agent sets for its session: the
// upstream sessions it shares with others send everything, and the
// gateway relays to each agent what its level admits.
func setLevel(x *exchange, params []byte) *reply {
	level, _ := stringMember(params, "level")
	if !validLogLevel(level) {
		return failure(errorf(codeInvalidParams, "level must be one of debug, info, notice, warning, error, critical, alert, emergency"))
	}
	if x.session != nil {
		x.session.level.Store(mcp.LoggingLevel(level))
	}
	return &reply{result: json.RawMessage(`{}`)}
}

// lister answers a list request of kind.
func (m *Mux) lister(kind *listKind) func(*exchange, []byte) *reply {
	return func(x *exchange, params []byte) *reply { return m.aggregate(x, kind, params) }
}

// servesModern reports whether method is a 2026-07-28 request the gateway
// answers, so that its _meta is checked; any other method is 404 whatever
// its _meta holds.
func (m *Mux) servesModern(method string) bool {
	return method == "subscriptions/listen" || (!removedMethods[method] && m.handler(method) != nil)
}

// initialize opens a legacy session, on the version the agent asked for
// when the gateway speaks it.
func (m *Mux) initialize(x *exchange, msg *message) {
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
	}
	// Params that do not decode leave the zero value: no capabilities,
	// and version 2025-03-26, which a server assumes when it has nothing
	// else to go on (Streamable HTTP 2025-11-25, "Protocol Version Header").
	_ = json.Unmarshal(msg.params, &p)
	version := mcp.NegotiateLegacyVersion(p.ProtocolVersion)
	// Complete before the store holds it, so no other request of the
	// session can read it half-set.
	ss, err := m.sessions.open(m.issueSession(x.caller, x.scope, version, p.Capabilities))
	if err != nil {
		refuseSession(x.rs.w, msg.id, err)
		return
	}
	result := `{"protocolVersion":"` + version + `","capabilities":` + legacyCapabilities +
		`,"serverInfo":` + serverInfo + `,"instructions":` + string(quote(instructions)) + `}`
	x.rs.w.Header().Set(mcp.HeaderSessionID, ss.id)
	x.rs.respond(msg.id, &reply{result: json.RawMessage(result)}, http.StatusOK)
}

// discover answers server/discover (2026-07-28).
func (m *Mux) discover() *reply {
	versions, _ := json.Marshal(supportedVersions)
	return &reply{result: json.RawMessage(`{"supportedVersions":` + string(versions) +
		`,"capabilities":` + capabilities + `,"instructions":` + string(quote(instructions)) +
		`,"_meta":{"` + mcp.MetaKeyServerInfo + `":` + serverInfo + `}}`)}
}

// serveBatch answers a JSON array of messages. Batches exist only in
// protocol version 2025-03-26; later versions removed them, so a batch
// in any other session is refused whole rather than half-served.
func (m *Mux) serveBatch(w http.ResponseWriter, x *exchange, body []byte) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil || len(raws) == 0 {
		writeRPCError(w, http.StatusBadRequest, nil, errorf(codeInvalidRequest, "a batch must be a non-empty array of messages"))
		return
	}
	ss, ok := m.session(x.ctx, x.r.Header.Get(mcp.HeaderSessionID), x.caller, x.scope)
	if !ok || ss.version != mcp.ProtocolVersion20250326 {
		writeRPCError(w, http.StatusBadRequest, nil, errorf(codeInvalidRequest,
			"batches are supported only in a session on protocol version %s", mcp.ProtocolVersion20250326))
		return
	}
	x.session = ss
	var out [][]byte
	for _, raw := range raws {
		if rep := m.batchItem(x, raw); rep != nil {
			out = append(out, rep)
		}
	}
	if len(out) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSON(w, http.StatusOK, append(append([]byte{'['}, bytes.Join(out, []byte{','})...), ']'))
}

// batchItem answers one message of a batch, or returns nil for a
// notification.
func (m *Mux) batchItem(x *exchange, raw []byte) []byte {
	msg, rerr := parseMessage(raw)
	switch {
	case rerr != nil:
		return answer(msg.id, failure(rerr))
	case msg.kind != kindRequest:
		m.notification(x, msg)
		return nil
	case msg.method == "initialize":
		return answer(msg.id, failure(errorf(codeInvalidRequest, "initialize must not be part of a batch")))
	}
	// Each element gets its own responder that cannot switch to SSE: the
	// batch's answer is one JSON array, with no room for a stream.
	item := *x
	item.rs = &responder{w: x.rs.w}
	return answer(msg.id, m.dispatch(&item, msg))
}

// allKinds subscribes a listener to every list.
func allKinds() map[*listKind]bool {
	kinds := make(map[*listKind]bool, len(listKinds))
	for _, k := range listKinds {
		kinds[k] = true
	}
	return kinds
}
