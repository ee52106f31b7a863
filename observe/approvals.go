package observe

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/audit"
)

// pendingDesc describes the gauge of the approval requests waiting.
var pendingDesc = prometheus.NewDesc("mcpgate_approvals_pending",
	"Tool calls waiting for a person's approval, across every instance sharing the store.", nil, nil)

// PendingCounter counts the approval requests waiting, as
// approvals.Service.Pending does.
type PendingCounter func(ctx context.Context) (int, error)

// SetApprovals has the metrics report the approval requests pending
// counts, from now on.
func (o *Observer) SetApprovals(pending PendingCounter) {
	o.pending.Store(&pending)
}

// Approval is the approvals' OnEvent: an audit event per request, per
// decision, per use and per expiry. It holds no argument: only a keyed
// hash of the arguments' SHA-256, which ties the events of one call
// together without letting anyone who reads the log guess the arguments
// by hashing candidates.
func (o *Observer) Approval(e approvals.Event) {
	l := o.log.Load()
	r := e.Request
	detail := "approval " + r.ID
	if r.DecidedBy != "" && (e.Kind == approvals.EventApproved || e.Kind == approvals.EventDenied) {
		detail += " by " + r.DecidedBy
	}
	l.Record(audit.Event{Kind: approvalKinds[e.Kind], User: r.Caller, Connector: r.Connector, Tool: r.Tool,
		Outcome: string(r.State), ArgsHash: l.HashArgs([]byte(r.ArgsSHA256)), Detail: detail})
}

// approvalKinds are the audit kinds of the approvals' events.
var approvalKinds = map[approvals.EventKind]audit.Kind{
	approvals.EventRequested: audit.KindApprovalRequested,
	approvals.EventApproved:  audit.KindApprovalApproved,
	approvals.EventDenied:    audit.KindApprovalDenied,
	approvals.EventUsed:      audit.KindApprovalUsed,
	approvals.EventExpired:   audit.KindApprovalExpired,
}

// collectApprovals sends the pending gauge, when approvals are set.
func (o *Observer) collectApprovals(ch chan<- prometheus.Metric) {
	p := o.pending.Load()
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	n, err := (*p)(ctx)
	if err != nil {
		o.logger.Error("counting the approval requests for metrics", zap.Error(err))
		return
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
}
