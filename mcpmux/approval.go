package mcpmux

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Approval decides a tool call that the grants say must wait for a
// person's approval (grants.View.NeedsApproval). It answers nil when an
// approval for exactly this call lets it through (and is used by it), an
// *ApprovalRequired when the call must wait or was denied, or another
// error when it cannot tell, which refuses the call. It runs on the call
// path before any credential is used for the call: it must not block
// beyond its store's round trips.
type Approval func(ctx context.Context, call ApprovalCall) error

// ApprovalCall is the call an Approval decides.
type ApprovalCall struct {
	// Caller is who calls.
	Caller grants.Caller
	// Connector and Tool name the tool, by its upstream name.
	Connector, Tool string
	// Arguments are the call's arguments as the agent sent them (nil when
	// it sent none).
	Arguments json.RawMessage
	// Policy is the generation of the grants that ask for approval.
	Policy string
}

// ApprovalRequired is the error an Approval returns for a call that must
// wait for an approver, or that one denied.
type ApprovalRequired struct {
	// ID names the approval request.
	ID string
	// URL is the approval page, which the user hands to an approver.
	URL string
	// Denied tells that an approver denied the call.
	Denied bool
}

// Error implements error.
func (e *ApprovalRequired) Error() string {
	if e.Denied {
		return "call denied by an approver"
	}
	return "this call waits for an approver"
}

// The outcomes of a tool call that approval stopped.
const (
	// OutcomeNeedsApproval: the call waits for an approver.
	OutcomeNeedsApproval Outcome = "needs_approval"
	// OutcomeApprovalDenied: an approver denied the call.
	OutcomeApprovalDenied Outcome = "approval_denied"
)

// approve holds back tool it of connector c, which the grants allow, until
// a person approves this very call, when the grants ask for that: after
// the grant check and before the credential is used or the upstream
// asked. It returns nil when the call may go on.
func (m *Mux) approve(x *exchange, c *connectors.Connector, it *item, params []byte) *reply {
	if m.approval == nil || !x.view.NeedsApproval(c.ID, it.name, it.readOnly) {
		return nil
	}
	err := m.approval(x.ctx, ApprovalCall{Caller: x.caller, Connector: c.ID, Tool: it.name,
		Arguments: member(params, "arguments"), Policy: m.policy.Generation()})
	if err == nil {
		return nil
	}
	ar, ok := err.(*ApprovalRequired)
	switch {
	case !ok:
		rep := toolError("this call needs an approval, which cannot be asked for now: "+err.Error(), map[string]string{"connector": c.ID, "status": "approval_unavailable"})
		rep.refused = &refusal{OutcomeNeedsApproval, err}
		return rep
	case ar.Denied:
		rep := toolError("Call denied by an approver: "+c.ID+" "+it.name+" was not run.", map[string]string{"connector": c.ID, "status": "denied", "approval_id": ar.ID})
		rep.refused = &refusal{OutcomeApprovalDenied, ar}
		return rep
	}
	rep := approvalAnswer(x, c.ID, ar)
	rep.refused = &refusal{OutcomeNeedsApproval, ar}
	return rep
}

// approvalAnswer asks the agent's user to have an approver open the
// approval page, the way consent is asked for (consentAnswer): a URL
// input request for a 2026-07-28 agent that declares URL elicitation, the
// URL elicitation error for a 2025-11-25 one, and a tool error carrying
// the URL for any other. The retry with the same arguments then passes.
func approvalAnswer(x *exchange, connector string, ar *ApprovalRequired) *reply {
	msg := "This call waits for an approver. Have one open " + ar.URL + " and approve it, then try the same call again."
	key := gatewayInputPrefix + "approval-" + ar.ID
	switch {
	case x.modern && x.urlElicitation(x.params):
		return urlInput(x, key, msg, ar.URL)
	case x.urlElicitation(x.params):
		return failure(&rpcError{Code: codeURLElicitationRequired, Message: msg, Data: map[string]any{
			"elicitations": []mcp.ElicitationParams{{Mode: "url", Message: msg, URL: ar.URL, ElicitationID: key}},
		}})
	}
	return toolError(msg, map[string]string{"connector": connector, "status": "needs_approval", "approval_id": ar.ID, "approval_url": ar.URL})
}
