package observe

import (
	"strings"

	"github.com/mcpgate/caddy-mcpgate/audit"
	"github.com/mcpgate/caddy-mcpgate/connectors"
)

// outcomeHidden is the outcome of a drift event: the gateway hides the
// item until an admin approves it.
const outcomeHidden = "hidden"

// Drift records a drift the registry saw first: an audit event naming the
// connector, the tool or prompt, and the fields that changed, never
// their values, which the upstream chooses and may make large.
func (o *Observer) Drift(d connectors.DriftNotice) {
	e := audit.Event{Kind: audit.KindDrift, Connector: d.Connector, Outcome: outcomeHidden,
		Detail: string(d.Kind) + " " + d.Name + " changed upstream (" + strings.Join(d.Fields, ", ") + "); hidden until an admin approves it"}
	if d.Kind == connectors.ToolPin {
		e.Tool = d.Name
	}
	o.log.Load().Record(e)
}
