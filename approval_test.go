package mcpgate

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestProvisionApprovalsJSON: the JSON config, which skips the
// Caddyfile's checks, gets the same ones when provisioned.
func TestProvisionApprovalsJSON(t *testing.T) {
	for _, tc := range []struct {
		app  App
		want string
	}{
		{App{Approvers: []string{"bob"}}, `approvers: source "bob"`},
		{App{ApprovalWebhook: "ftp://x"}, "want an http:// or https:// URL"},
		{App{ApprovalTTL: caddy.Duration(-1)}, "approval_ttl must be positive"},
		{App{Approvers: []string{"group:security"}, ApprovalWebhook: "https://h.example.com/x"}, ""},
	} {
		err := tc.app.provisionApprovals()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.app, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.app, err, tc.want)
		}
	}
}
