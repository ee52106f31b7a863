package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// TestApprovalEvents: each change of a request is an audit event that
// names who, what and the request, with the arguments neither in the
// clear nor as their plain SHA-256; and the gauge counts the pending ones.
func TestApprovalEvents(t *testing.T) {
	o, lines := newObserver(t, nil)
	ring, _ := store.NewRing([][]byte{bytes.Repeat([]byte{1}, 32)})
	svc, err := approvals.New(approvals.Options{Store: store.Seal(store.NewMemory(), ring), OnEvent: o.Approval})
	if err != nil {
		t.Fatal(err)
	}
	o.SetApprovals(svc.Pending)
	ctx := context.Background()
	b := approvals.Binding{Caller: "alice", Connector: "bank", Tool: "transfer", Policy: "p"}
	_, r, err := svc.Check(ctx, b, json.RawMessage(`{"to":"`+canary+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(o, strings.NewReader("# HELP mcpgate_approvals_pending Tool calls waiting for a person's approval, across every instance sharing the store.\n# TYPE mcpgate_approvals_pending gauge\nmcpgate_approvals_pending 1\n"), "mcpgate_approvals_pending"); err != nil {
		t.Error(err)
	}
	if _, err := svc.Decide(ctx, approvals.Decision{ID: r.ID, Approve: true, By: "bob"}); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := svc.Check(ctx, b, json.RawMessage(`{"to":"`+canary+`"}`)); out != approvals.Pass {
		t.Fatal("the approved retry did not pass")
	}
	evs := events(t, o)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Kind))
		raw, _ := json.Marshal(e)
		if strings.Contains(string(raw), canary) || strings.Contains(string(raw), r.ArgsSHA256) || e.ArgsHash == "" {
			t.Errorf("event %s: %s", e.Kind, raw)
		}
		if e.User != "alice" || e.Connector != "bank" || e.Tool != "transfer" || !strings.Contains(e.Detail, r.ID) {
			t.Errorf("event %+v", e)
		}
	}
	if got := strings.Join(kinds, ","); got != "approval_used,approval_approved,approval_requested" {
		t.Errorf("events %s", got)
	}
	// The approver's decision is kept with the consents and revocations,
	// where no flood of tool calls evicts it; what calls cause goes with
	// the calls.
	for _, e := range evs {
		want := map[audit.Kind]string{audit.KindApprovalApproved: "auth", audit.KindApprovalRequested: "calls", audit.KindApprovalUsed: "calls"}[e.Kind]
		if e.Class() != want {
			t.Errorf("event %s in class %s, want %s", e.Kind, e.Class(), want)
		}
	}
	var messages []string
	for _, l := range lines.All() {
		messages = append(messages, l.Message)
	}
	if !slices.Contains(messages, "call approved") || !slices.Contains(messages, "approval requested") {
		t.Errorf("audit lines %q", messages)
	}
	for _, l := range lines.All() {
		if line, _ := json.Marshal(l.ContextMap()); strings.Contains(l.Message+string(line), canary) {
			t.Errorf("line %v", l)
		}
	}
}
