package mcpmux

import (
	"github.com/mark3labs/mcp-go/mcp"
)

// checkInputRequests refuses an input-required result that asks a
// 2026-07-28 agent for input its request did not declare it can give. A
// server must not send input requests the client has not declared
// (Multi Round-Trip Requests), and a request that needs a capability the
// client did not declare gets MissingRequiredClientCapabilityError (-32021,
// HTTP 400) listing what is missing (Basic, "_meta"). The upstream may not
// know what the agent declared, so the gateway checks.
func checkInputRequests(x *exchange, rep *reply) *reply {
	if !x.modern || rep == nil || rep.result == nil {
		return rep
	}
	if kind, _ := stringMember(rep.result, "resultType"); kind != string(mcp.ResultTypeInputRequired) {
		return rep
	}
	declared := member(member(x.params, "_meta"), mcp.MetaKeyClientCapabilities)
	missing := map[string]any{}
	requests := member(rep.result, "inputRequests")
	_ = members(requests, func(_ string, v span) bool {
		if name, need := requiredCapability(requests[v.start:v.end]); name != "" && !declares(declared, name, need) {
			missing[name] = need
		}
		return true
	})
	if len(missing) == 0 {
		return rep
	}
	return failure(&rpcError{
		Code:    mcp.MISSING_REQUIRED_CLIENT_CAPABILITY,
		Message: "the upstream needs input this request did not declare it can give",
		Data:    map[string]any{"requiredCapabilities": missing},
	})
}

// requiredCapability is the client capability an input request needs: its
// name, and within it the member it needs (elicitation's url or form), as
// the ClientCapabilities object that would declare it. An unknown method
// gives "".
func requiredCapability(req []byte) (string, map[string]any) {
	method, _ := stringMember(req, "method")
	switch mcp.MCPMethod(method) {
	case mcp.MethodSamplingCreateMessage:
		return "sampling", map[string]any{}
	case mcp.MethodListRoots:
		return "roots", map[string]any{}
	case mcp.MethodElicitationCreate:
		if mode, _ := stringMember(member(req, "params"), "mode"); mode == "url" {
			return "elicitation", map[string]any{"url": map[string]any{}}
		}
		return "elicitation", map[string]any{"form": map[string]any{}}
	}
	return "", nil
}

// declares reports whether the capabilities caps declare name and, within
// it, what need holds. An elicitation capability with neither form nor url
// declares form (Elicitation, "Capabilities": the empty object is form
// mode, for backwards compatibility).
func declares(caps []byte, name string, need map[string]any) bool {
	got := member(caps, name)
	if got == nil {
		return false
	}
	for sub := range need {
		if member(got, sub) != nil {
			continue
		}
		if name == "elicitation" && sub == "form" && member(got, "url") == nil {
			continue
		}
		return false
	}
	return true
}
