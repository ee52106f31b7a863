package mcpmux

import (
	"context"
	"sync"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// The statuses a caller sees for a connector: the DESIGN's user statuses,
// and error for one that cannot be reached.
const (
	StatusReady         = "ready"
	StatusNeedsAuth     = "needs_auth"
	StatusMisconfigured = "misconfigured"
	StatusNoAccess      = "no_access"
	StatusFailed        = "error"
	StatusDisabled      = "disabled"
)

// ConnectorStatus is one connector as a caller sees it.
type ConnectorStatus struct {
	// ID is the connector's id.
	ID string `json:"id"`
	// Title and Description describe the connector to people.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Status is ready, needs_auth, misconfigured, no_access, disabled, or
	// error when the connector cannot be reached.
	Status string `json:"status"`
	// Reason says what is wrong, for any status but ready.
	Reason string `json:"reason,omitempty"`
	// ConnectURL is where to consent, for needs_auth.
	ConnectURL string `json:"connect_url,omitempty"`
	// MCP is the path of the connector's own MCP endpoint, absent for a
	// connector that is only an HTTP API.
	MCP string `json:"mcp,omitempty"`
	// API is the path under which the connector's HTTP API is served,
	// ending in "/", for a connector that has one.
	API string `json:"api,omitempty"`
	// ToolCount is how many of the connector's tools the caller may use,
	// once its list could be fetched; absent before, and for a connector
	// that is only an HTTP API.
	ToolCount *int `json:"tool_count,omitempty"`
}

// Statuses returns every connector the caller may see, with its status. It
// refreshes the tools list of each MCP connector that the caller has access
// to (in parallel, each within its timeout), so that the status is
// current. A connector that is only an HTTP API is ready once its
// credential is: the gateway does not call an API on its own.
func (m *Mux) Statuses(ctx context.Context, caller grants.Caller) []ConnectorStatus {
	v := m.view(caller)
	conns := m.known(v)
	out := make([]ConnectorStatus, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		out[i] = ConnectorStatus{ID: c.ID, Title: c.Title, Description: c.Description, Status: StatusNoAccess}
		if c.URL != nil {
			out[i].MCP = "/connectors/" + c.ID + "/mcp"
		}
		if c.API != nil {
			out[i].API = "/connectors/" + c.ID + "/api/"
		}
		// Disabled, with no credential looked up and no upstream asked:
		// its tokens stay as they are until an admin enables it.
		if c.Disabled {
			out[i].Status, out[i].Reason = StatusDisabled, connectors.DisabledError(c.ID).Error()
			continue
		}
		// no_access for a connector the caller may see but use nothing of:
		// it costs no credential lookup and no upstream request.
		access := v.HasItems(c.ID)
		if c.URL == nil {
			access, _ = v.Whole(c.ID) // only an API, which takes a grant of the whole connector
		}
		if !access {
			continue
		}
		// Each goroutine writes only out[i]; Wait orders it before return.
		wg.Add(1)
		go func() {
			defer wg.Done()
			cred, err := m.credential(ctx, CredentialRequest{Caller: caller, Connector: c})
			if err == nil && c.URL != nil {
				var l *list
				if l, err = m.list(ctx, caller, c, cred, toolsKind); err == nil {
					out[i].ToolCount = usable(v, c.ID, l)
				}
			}
			out[i].Status, out[i].Reason = StatusReady, ""
			if cr, ok := asConsent(err); ok {
				out[i].Status, out[i].Reason, out[i].ConnectURL = cr.Status, cr.Message, cr.URL
			} else if err != nil {
				out[i].Status, out[i].Reason = StatusFailed, err.Error()
			}
		}()
	}
	wg.Wait()
	return out
}

// usable counts the tools of connector's list l that view allows: the
// ones tools/list shows the caller, less the built-in tool.
func usable(view *grants.View, connector string, l *list) *int {
	n := 0
	for _, it := range l.items {
		if view.Allows(grants.Tools, connector, it.name, it.readOnly) {
			n++
		}
	}
	return &n
}
