package mcpmux

import (
	"encoding/json"
	"time"
)

// Observer is told what the gateway does, for audit logs and metrics. Its
// methods run on the request path, called concurrently by many requests:
// they must be quick, must not block, and must not keep what they are
// given (the arguments least of all).
type Observer interface {
	// ToolCall is called once for each tools/call an agent makes, when
	// its answer is ready.
	ToolCall(ToolCall)
	// UpstreamRequest is called once for each request the gateway sends
	// an upstream, when its answer is read or the request has failed.
	UpstreamRequest(UpstreamRequest)
}

// Outcome is how a tool call ended, in one short word.
type Outcome string

// The outcomes of a tool call.
const (
	// OutcomeOK: the tool answered.
	OutcomeOK Outcome = "ok"
	// OutcomeToolError: the tool answered with isError.
	OutcomeToolError Outcome = "tool_error"
	// OutcomeUpstreamError: the upstream could not be reached or
	// answered with a JSON-RPC error.
	OutcomeUpstreamError Outcome = "upstream_error"
	// OutcomeDenied: no grant allows the tool, or it does not exist.
	OutcomeDenied Outcome = "denied"
	// OutcomeNeedsAuth: someone must consent before the connector can
	// be used.
	OutcomeNeedsAuth Outcome = "needs_auth"
	// OutcomeInvalid: the request was malformed, and refused unrouted.
	OutcomeInvalid Outcome = "invalid"
	// OutcomeDisabled: an admin disabled the tool's connector.
	OutcomeDisabled Outcome = "disabled"
)

// builtinConnector is the connector a call of the built-in tool is
// reported under.
const builtinConnector = "mcpgate"

// ToolCall describes one tools/call.
type ToolCall struct {
	// Caller is who called.
	Caller string
	// Connector is the tool's connector: "mcpgate" for the built-in tool,
	// and empty when the name the agent asked for names no connector.
	Connector string
	// Tool is the tool's name at its upstream or, when the call was
	// refused before the tool was found, the name the agent asked for.
	Tool string
	// Granted reports that the grants allow the tool. It is false for a
	// call refused before the grants could judge it, such as one whose
	// connector needs consent before its tools can be listed.
	Granted bool
	// Outcome is how the call ended.
	Outcome Outcome
	// Err is the gateway's reason for an OutcomeUpstreamError or
	// OutcomeNeedsAuth it reached itself, or nil. It never holds what the
	// upstream said.
	Err error
	// Duration is how long the gateway took to answer.
	Duration time.Duration
	// Arguments are the call's arguments as the agent sent them. They may
	// hold anything, secrets included: hash them, never keep them.
	Arguments json.RawMessage
}

// UpstreamRequest describes one request to an upstream.
type UpstreamRequest struct {
	// Connector is the upstream's connector.
	Connector string
	// Method is the JSON-RPC method.
	Method string
	// Duration is how long the request took, its answer read.
	Duration time.Duration
	// Err is why no answer came (the upstream could not be reached,
	// timed out, or answered with an HTTP error), or nil: a JSON-RPC
	// error answer is an answer.
	Err error
}

// refusal is why the gateway answered a tool call itself, with no answer
// from the tool: for the Observer.
type refusal struct {
	outcome Outcome
	err     error
}

// Refusals without a cause, shared.
var (
	refusedDenied  = &refusal{outcome: OutcomeDenied}
	refusedInvalid = &refusal{outcome: OutcomeInvalid}
)

// invalid marks rep as the refusal of a malformed request.
func invalid(rep *reply) *reply {
	rep.refused = refusedInvalid
	return rep
}

// toolRoute is where a tools/call was routed, for the Observer.
type toolRoute struct {
	connector, tool string
	granted         bool
}

// callTool answers tools/call, telling the Observer.
func (m *Mux) callTool(x *exchange, params []byte) *reply {
	// Without an observer the call is not timed and its arguments not
	// looked up: the hot path pays only for what someone reads.
	if m.observer == nil {
		rep, _, _ := m.routeCall(x, params)
		return rep
	}
	start := time.Now()
	// A call through mcpgate_call_tool is told as the call it wraps.
	rep, route, params := m.routeCall(x, params)
	call := ToolCall{Caller: x.caller.ID, Connector: route.connector, Tool: route.tool, Granted: route.granted,
		Duration: time.Since(start), Arguments: member(params, "arguments")}
	call.Outcome, call.Err = outcome(rep)
	m.observer.ToolCall(call)
	return rep
}

// outcome tells how a tool call's reply ended.
func outcome(rep *reply) (Outcome, error) {
	switch {
	case rep.refused != nil:
		return rep.refused.outcome, rep.refused.err
	case rep.err != nil:
		return OutcomeUpstreamError, nil
	case isErrorResult(rep.result):
		return OutcomeToolError, nil
	}
	return OutcomeOK, nil
}

// isErrorResult reports whether a tools/call result says isError: true.
// Only the literal true counts; the strict check has already refused a
// duplicate isError that another parser might read otherwise.
func isErrorResult(result []byte) bool {
	v := member(result, "isError")
	return len(v) == 4 && string(v) == "true"
}

// refusedConnector is the connector a refused tool call names: the
// endpoint's own, or the one the name's prefix names, if it exists.
func (m *Mux) refusedConnector(x *exchange, name string) string {
	id := x.scope
	if id == "" {
		id, _ = m.names.connector(name)
	}
	if _, ok := m.conns[id]; !ok {
		return ""
	}
	return id
}
