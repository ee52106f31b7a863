package gateway

import (
	"context"
	"errors"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// ApprovalGate is the mux's Approval over the approvals that service
// returns: a call passes when an approval of exactly it is used now, and
// otherwise waits on its request's page, at publicURL + "/approvals/{id}"
// (relative to the site when publicURL is empty, as the connect links are).
// Before the store opens service returns nil, and every call that needs
// approval is refused: the gate fails closed.
func ApprovalGate(service func() *approvals.Service, publicURL string) mcpmux.Approval {
	return func(ctx context.Context, call mcpmux.ApprovalCall) error {
		s := service()
		if s == nil {
			return errors.New("approvals are not available yet: the store is not open")
		}
		b := approvals.Binding{Caller: call.Caller.ID, Connector: call.Connector, Tool: call.Tool, Policy: call.Policy}
		out, r, err := s.Check(ctx, b, call.Arguments)
		switch {
		case err != nil:
			return err
		case out == approvals.Pass:
			return nil
		}
		return &mcpmux.ApprovalRequired{ID: r.ID, URL: ApprovalURL(publicURL, r.ID), Denied: out == approvals.Denied}
	}
}

// ApprovalURL is the page of approval request id, as ApprovalGate makes it.
func ApprovalURL(publicURL, id string) string {
	return strings.TrimSuffix(publicURL, "/") + "/approvals/" + id
}
