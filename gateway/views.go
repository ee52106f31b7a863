package gateway

import (
	"cmp"
	"context"
	"slices"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// ConnectorView is a connector as the admin API shows it: no secret. It
// is built field by field from the connector, never by marshalling the
// config, so that a credential added to the config later cannot appear
// here by default.
type ConnectorView struct {
	ID string `json:"id"`
	// Source is "config" (read-only at run time) or "runtime".
	Source string `json:"source"`
	URL    string `json:"url,omitempty"`
	// API is the base URL of its HTTP API, if it has one.
	API string `json:"api,omitempty"`
	// Status is "disabled" for a connector that an admin or the config
	// disabled; absent otherwise, when Connection tells the rest.
	Status string `json:"status,omitempty"`
	// Auth is none, bearer, header or oauth.
	Auth         string `json:"auth"`
	Consent      string `json:"consent,omitempty"`
	Registration string `json:"registration,omitempty"`
	Preset       string `json:"preset,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
	// Connection is the shared-consent connection; per-user ones are each
	// user's, on the Connectors page.
	Connection *connectors.Connection `json:"connection,omitempty"`
	// Tools summarizes the admin's tool selection, if there is one.
	Tools *ToolsSummary `json:"tools,omitempty"`
}

// ToolsSummary is the size of a selection and the tools and prompts
// that drifted.
type ToolsSummary struct {
	Registered     int      `json:"registered"`
	Drifted        []string `json:"drifted,omitempty"`
	DriftedPrompts []string `json:"drifted_prompts,omitempty"`
}

// View shows connector c of g, with what snap, the registry now, says of
// it: a tool may have drifted since g was built.
func (g *Gateway) View(ctx context.Context, snap *connectors.Snapshot, c *connectors.Connector) ConnectorView {
	v := ConnectorView{ID: c.ID, Source: "config", Auth: cmp.Or(string(c.Auth.Type), "none")}
	if c.URL != nil {
		u := *c.URL
		if u.RawQuery != "" {
			u.RawQuery = "redacted" // a query may carry a key
		}
		v.URL = u.String()
	}
	if c.API != nil {
		v.API = c.API.String()
	}
	e, _ := snap.Entry(c.ID)
	v.Preset, v.Title, v.Description = e.Preset, e.Title, e.Description
	if e.Runtime {
		v.Source = "runtime"
	}
	if e.Config.Disabled {
		v.Status = string(connectors.StatusDisabled)
	}
	if cfg, ok := g.OAuthClient(c.ID); ok {
		v.Consent, v.Registration = string(cfg.Consent), cmp.Or(cfg.Registration, "auto")
		if cfg.Consent == oauthflow.Shared && g.manager != nil {
			conn := g.manager.Connection(ctx, c.ID, "")
			v.Connection = &conn
		}
	}
	if sel := snap.Selection(c.ID); sel != nil {
		v.Tools = &ToolsSummary{Registered: len(sel.Tools), Drifted: sel.Drifted(), DriftedPrompts: sel.DriftedPrompts()}
	}
	return v
}

// Drift returns the selected tools and prompts of connector id that
// changed upstream and are hidden until an admin approves them, as the
// registry records them now: a drift is recorded without a new
// generation.
func (g *Gateway) Drift(id string) (tools, prompts []string) {
	snap := g.snap
	if g.o.Latest != nil {
		snap = g.o.Latest()
	}
	if snap == nil {
		return nil, nil
	}
	sel := snap.Selection(id)
	if sel == nil {
		return nil, nil
	}
	return sel.Drifted(), sel.DriftedPrompts()
}

// Decision is the decision on one tool for one caller.
type Decision struct {
	Tool      string               `json:"tool"`
	Operation connectors.Operation `json:"operation"`
	Allowed   bool                 `json:"allowed"`
	// Source says which grant allowed it: "config", whose 1-based index
	// in the config is Rule, or "runtime", whose id is GrantID and whose
	// reason is Reason. Grant is that grant's rule. All are absent when
	// the tool is denied.
	Source  string       `json:"source,omitempty"`
	Rule    int          `json:"rule,omitempty"`
	GrantID string       `json:"grant_id,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Grant   *grants.Rule `json:"grant,omitempty"`
}

// Access is what a caller may do with one connector.
type Access struct {
	ID string `json:"id"`
	// Visible: some grant names the connector, so the caller sees it.
	Visible bool `json:"visible"`
	// Access: some grant could allow at least one of its items.
	Access bool       `json:"access"`
	Tools  []Decision `json:"tools,omitempty"`
}

// Explain decides, for view, a view of g's Policy, each of g's
// connectors and each tool that its selection or config allows or that
// asked names, naming the grant that allowed a tool. A tool's
// operation is the one the config or the selection records, else write:
// Explain asks no upstream, so it cannot read a readOnlyHint, and assumes
// the stricter.
func (g *Gateway) Explain(view *grants.View, asked map[string][]string) []Access {
	out := make([]Access, 0, len(g.conns))
	for _, c := range g.conns {
		a := Access{ID: c.ID, Visible: view.Visible(c.ID), Access: view.HasItems(c.ID)}
		names := append(slices.Clone(c.Tools.Allow), asked[c.ID]...)
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			op := c.Tools.Operation(name, false)
			d := view.Decide(grants.Tools, c.ID, name, op == connectors.Read)
			a.Tools = append(a.Tools, g.decision(name, op, d))
		}
		out = append(out, a)
	}
	return out
}

// decision is the decision d on tool name, with the grant that made it.
func (g *Gateway) decision(name string, op connectors.Operation, d grants.Decision) Decision {
	out := Decision{Tool: name, Operation: op, Allowed: d.Allowed}
	gr, ok := g.grant(d.Rule)
	if !d.Allowed || !ok {
		return out
	}
	out.Grant = &gr.Rule
	if gr.Runtime {
		out.Source, out.GrantID, out.Reason = "runtime", gr.ID, gr.Reason
	} else {
		out.Source, out.Rule = "config", gr.Index
	}
	return out
}
