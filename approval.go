package mcpgate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// approvalSlot holds the approvals service once the store is open; nil
// before, when every call that needs approval is refused (fail closed).
type approvalSlot struct {
	atomic.Pointer[approvals.Service]
}

// provisionApprovals checks the approval settings, which the JSON config
// may hold without the Caddyfile's checks, compiles the approvers, and
// wires the approvals into what every generation of the gateway shares:
// the mux asks them on calls, the site serves their pages.
func (a *App) provisionApprovals() error {
	if a.ApprovalTTL < 0 {
		return errors.New("approval_ttl must be positive")
	}
	if a.ApprovalWebhook != "" {
		if err := approvals.CheckWebhookURL(a.ApprovalWebhook); err != nil {
			return err
		}
	}
	if len(a.Approvers) > 0 {
		approvers, err := grants.CompileSources(a.Approvers)
		if err != nil {
			return fmt.Errorf("approvers: %w", err)
		}
		a.approvers = approvers
	}
	a.approvals = new(approvalSlot)
	a.gw.Mux.Approval = a.approvalGate
	a.gw.Approvals = web.Approvals{Service: a.approvals.Load, Approvers: a.approvers, SelfApprove: a.SelfApprove}
	return nil
}

// startApprovals opens the approvals on the store, sealed: a request
// holds the arguments an approver is shown. Instances sharing the store
// share the requests.
func (a *App) startApprovals() error {
	o := approvals.Options{Store: a.vault.sealed, TTL: time.Duration(a.ApprovalTTL), SelfApprove: a.SelfApprove, OnEvent: a.obs.Approval}
	if a.ApprovalWebhook != "" {
		hook, err := approvals.NewWebhook(a.ApprovalWebhook, a.approvalURL, nil, a.logger.Named("approvals"))
		if err != nil {
			return err
		}
		o.OnRequest = hook.Send
	}
	s, err := approvals.New(o)
	if err != nil {
		return err
	}
	a.approvals.Store(s)
	a.obs.SetApprovals(s.Pending)
	return nil
}

// approvalService returns the approvals service, or why there is none.
func (a *App) approvalService() (*approvals.Service, error) {
	if a.approvals == nil || a.approvals.Load() == nil {
		return nil, errors.New("approvals are not available yet: the store is not open")
	}
	return a.approvals.Load(), nil
}

// approvalGate is the mux's Approval: the call passes when an approval of
// exactly it is used now, and otherwise waits on a request's page.
func (a *App) approvalGate(ctx context.Context, call mcpmux.ApprovalCall) error {
	s, err := a.approvalService()
	if err != nil {
		return err
	}
	b := approvals.Binding{Caller: call.Caller.ID, Connector: call.Connector, Tool: call.Tool, Policy: call.Policy}
	out, r, err := s.Check(ctx, b, call.Arguments)
	switch {
	case err != nil:
		return err
	case out == approvals.Pass:
		return nil
	}
	return &mcpmux.ApprovalRequired{ID: r.ID, URL: a.approvalURL(r.ID), Denied: out == approvals.Denied}
}

// approvalURL is the page of approval request id, on public_url when set
// (as the connect links are), or relative to the site.
func (a *App) approvalURL(id string) string {
	return strings.TrimSuffix(a.PublicURL, "/") + "/approvals/" + id
}
