package mcpgate

import (
	"errors"
	"fmt"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// provisionApprovals checks the approval settings, which the JSON config
// may hold without the Caddyfile's checks, and compiles the approvers.
func (a *App) provisionApprovals() error {
	if a.ApprovalTTL < 0 {
		return errors.New("approval_ttl must be positive")
	}
	if a.ApprovalWebhook != "" {
		if err := approvals.CheckWebhookURL(a.ApprovalWebhook); err != nil {
			return err
		}
	}
	if len(a.Approvers) == 0 {
		return nil
	}
	approvers, err := grants.CompileSources(a.Approvers)
	if err != nil {
		return fmt.Errorf("approvers: %w", err)
	}
	a.approvers = approvers
	return nil
}
