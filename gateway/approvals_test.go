package gateway

import (
	"context"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// TestApprovalGateFailsClosed: before the store opens there is no
// service, and a call that needs approval is refused, never let through.
func TestApprovalGateFailsClosed(t *testing.T) {
	gate := ApprovalGate(func() *approvals.Service { return nil }, "https://gw.example.com/")
	if err := gate(context.Background(), mcpmux.ApprovalCall{Connector: "bank", Tool: "pay"}); err == nil {
		t.Fatal("a call passed without the approvals service")
	}
	if got := ApprovalURL("https://gw.example.com/", "abc"); got != "https://gw.example.com/approvals/abc" {
		t.Errorf("ApprovalURL = %s", got)
	}
}
