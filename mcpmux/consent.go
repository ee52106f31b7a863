package mcpmux

import (
	"encoding/json"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
)

// ConsentRequired is the error a credential source returns when someone
// must consent in a browser before the connector can be used: the caller,
// or an admin when consent is shared.
type ConsentRequired struct {
	// Connector is the connector's id.
	Connector string
	// Status is what the caller is told: StatusNeedsAuth, or
	// StatusMisconfigured when consent cannot work yet.
	Status string
	// URL is where the consent starts: a page on the gateway, never an
	// authorization server's URL with a state in it. The URL reaches the
	// agent, its model and their logs; a state in it would let whoever
	// reads it finish the consent in their own browser and bind their
	// account to this user (the consent that FastMCP's OAuth proxy did
	// not bind to its user, GHSA-rww4-4w9c-7733).
	URL string
	// Message says what is needed, for people. It holds no secret.
	Message string
}

// Error implements error.
func (e *ConsentRequired) Error() string { return e.Message }

// codeURLElicitationRequired is URLElicitationRequiredError (2025-11-25,
// Elicitation, "URL Mode Elicitation for OAuth Flows"): the error that
// tells a client to open a URL for its user and then retry.
const codeURLElicitationRequired = mcp.URL_ELICITATION_REQUIRED

// consentReply answers a request that reached a connector the caller has
// not consented to. An agent that declared URL-mode elicitation gets the
// URL elicitation error, so that its client can open the URL for the user
// and retry; a tool call from any other agent gets a tool error carrying
// the URL, which the model can show the user; anything else gets a plain
// JSON-RPC error with the URL in its message and data.
func consentReply(x *exchange, cr *ConsentRequired) *reply {
	rep := consentAnswer(x, cr)
	rep.refused = &refusal{OutcomeNeedsAuth, cr}
	return rep
}

// consentAnswer is consentReply's answer.
func consentAnswer(x *exchange, cr *ConsentRequired) *reply {
	method, params := x.method, x.params
	msg := cr.Message
	if cr.URL != "" {
		msg += " Open " + cr.URL + " to connect, then try again."
	}
	switch {
	case cr.URL != "" && x.modern && inputRequired[method] && x.urlElicitation(params):
		return consentInput(x, cr, msg)
	case cr.URL != "" && x.urlElicitation(params):
		// One elicitation id per connector, the same on every request, so
		// that a client asked twice for one consent can tell it is one.
		return failure(&rpcError{Code: codeURLElicitationRequired, Message: msg, Data: map[string]any{
			"elicitations": []mcp.ElicitationParams{{
				Mode: "url", Message: cr.Message, URL: cr.URL,
				ElicitationID: "mcpgate-connect-" + cr.Connector,
			}},
		}})
	case method == "tools/call":
		// A tool error, not a protocol error: the model reads a tool's
		// result and can tell the user to connect (Tools, "Error
		// Handling": errors a model can act on are results with isError).
		return toolError(msg, map[string]string{"connector": cr.Connector, "status": cr.Status, "connect_url": cr.URL})
	default:
		return failure(&rpcError{Code: codeInternalError, Message: msg, Data: map[string]string{
			"connector": cr.Connector, "status": cr.Status, "connect_url": cr.URL,
		}})
	}
}

// inputRequired are the 2026-07-28 requests whose result may be an
// InputRequiredResult (Multi Round-Trip Requests).
var inputRequired = map[string]bool{"tools/call": true, "prompts/get": true, "resources/read": true}

// consentInput asks a 2026-07-28 agent for consent in band: an
// input-required result whose URL input request opens the connect page,
// and a sealed requestState that lets the retried request through once
// the user has consented (and carries on any state of the upstream's).
func consentInput(x *exchange, cr *ConsentRequired, msg string) *reply {
	return urlInput(x, gatewayInputPrefix+"connect-"+cr.Connector, msg, cr.URL)
}

// urlInput is an input-required result whose one URL input request, key,
// opens target.
func urlInput(x *exchange, key, msg, target string) *reply {
	name, _ := stringMember(x.params, nameKey(x.method))
	// The request may be a retry the upstream asked for: its state and
	// answers ride in the gateway's state, sealed, and go back to the
	// upstream on the retry after consent (takeState).
	inner, _ := stringMember(x.params, "requestState")
	state := x.mux.states.seal(x.caller.ID, gatewayState{
		Method: x.method, Name: name, Inner: inner, Expires: x.mux.now().Add(stateTTL).Unix(),
		Responses: member(x.params, "inputResponses"),
	})
	result, _ := json.Marshal(map[string]any{
		"resultType": mcp.ResultTypeInputRequired,
		"inputRequests": map[string]any{key: map[string]any{
			"method": mcp.MethodElicitationCreate,
			"params": mcp.ElicitationParams{Mode: "url", Message: msg, URL: target, ElicitationID: key},
		}},
		"requestState": state,
	})
	return &reply{result: result}
}

// asConsent reports whether err asks for consent.
func asConsent(err error) (*ConsentRequired, bool) {
	var cr *ConsentRequired
	return cr, errors.As(err, &cr)
}

// urlElicitation reports whether the agent declared URL-mode elicitation:
// in its session's initialize (2025-11-25), or in this request's _meta
// (2026-07-28, where every request carries the client's capabilities).
func (x *exchange) urlElicitation(params []byte) bool {
	if x.modern {
		return declaresURLElicitation(member(member(params, "_meta"), mcp.MetaKeyClientCapabilities))
	}
	return x.session != nil && x.session.urlElicitation
}

// declaresURLElicitation reads capabilities.elicitation.url.
func declaresURLElicitation(caps []byte) bool {
	return member(member(caps, "elicitation"), "url") != nil
}

// elicitationVersion reports whether a legacy protocol version has URL
// elicitation: 2025-11-25 introduced it. Versions are dates, so they
// compare as strings.
func elicitationVersion(version string) bool {
	return version >= mcp.ProtocolVersion20251125
}
