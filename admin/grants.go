package admin

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// grants answers GET /mcpgate/grants. With ?user=…&groups=…[&tool=c/name]
// it is the effective decision for that caller on every connector, and on
// each tool that a selection, the config or a tool parameter names; without
// them it lists every grant, the config's and the runtime ones.
func (api *API) grants(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()) == 0 {
		return api.listGrants(w)
	}
	caller, asked, err := grantsQuery(r)
	if err != nil {
		return err
	}
	g := api.Live.Current()
	for conn := range asked {
		if _, ok := g.Connector(conn); !ok {
			return errorf(http.StatusNotFound, "no connector %q", conn)
		}
	}
	view := g.Policy().For(caller)
	return write(w, http.StatusOK, map[string]any{
		"user": caller.ID, "groups": caller.Groups, "admin": view.IsAdmin(), "connectors": g.Explain(view, asked),
	})
}

// grantsQuery reads whose grants, and which tools besides the known ones,
// GET /mcpgate/grants asks about.
func grantsQuery(r *http.Request) (grants.Caller, map[string][]string, error) {
	q := r.URL.Query()
	caller, err := queryCaller(q, "whose grants")
	if err != nil {
		return caller, nil, err
	}
	asked := map[string][]string{}
	for _, t := range q["tool"] {
		conn, name, ok := strings.Cut(t, "/")
		if !ok || conn == "" || name == "" {
			return caller, nil, errorf(http.StatusBadRequest, "tool %q: say <connector>/<tool>", t)
		}
		asked[conn] = append(asked[conn], name)
	}
	return caller, asked, nil
}

// grantView is a grant as the admin API shows it: its rule, where it
// comes from, and for a runtime grant its id, reason, time and author.
type grantView struct {
	// Source is "config" (read-only here; Index names it) or "runtime".
	Source string `json:"source"`
	Index  int    `json:"index,omitempty"`
	ID     string `json:"id,omitempty"`
	grants.Rule
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created,omitzero"`
	By      string    `json:"by,omitempty"`
}

// viewGrant shows grant g.
func viewGrant(g connectors.Grant) grantView {
	v := grantView{Source: "config", Index: g.Index, ID: g.ID, Rule: g.Rule, Reason: g.Reason, Created: g.Created, By: g.By}
	if g.Runtime {
		v.Source = "runtime"
	}
	return v
}

// listGrants answers GET /mcpgate/grants without a caller: every grant,
// the config's in config order, then the runtime ones oldest first.
func (api *API) listGrants(w http.ResponseWriter) error {
	all := api.Registry.Snapshot().Grants
	out := make([]grantView, len(all))
	for i, g := range all {
		out[i] = viewGrant(g)
	}
	return write(w, http.StatusOK, map[string]any{"grants": out})
}

// addedGrant answers POST /mcpgate/grants: the grant, and what in it
// names no connector the gateway serves.
type addedGrant struct {
	grantView
	Warnings []string `json:"warnings,omitempty"`
}

// addGrant answers POST /mcpgate/grants: the registry checks the grant
// as a config grant is checked and keeps it with its reason, and the
// gateway decides by it from the next request on, on every instance.
func (api *API) addGrant(w http.ResponseWriter, r *http.Request) error {
	var req connectors.GrantRequest
	if err := read(r, &req); err != nil {
		return err
	}
	req.By = r.RemoteAddr
	g, err := api.Registry.AddGrant(r.Context(), req)
	if err != nil {
		return fromRegistry(err)
	}
	user, conn := grantSubject(g.Rule)
	api.Audit.AdminChange(user, conn, adminDetail(r, fmt.Sprintf("added the runtime grant %s (%s) because %q", g.ID, describeRule(g.Rule), g.Reason)))
	return write(w, http.StatusCreated, addedGrant{viewGrant(g), api.unknownConnectors(g.Rule)})
}

// removeGrant answers DELETE /mcpgate/grants/{id}: the gateway stops
// deciding by it from the next request on, open sessions included.
func (api *API) removeGrant(w http.ResponseWriter, r *http.Request) error {
	g, err := api.Registry.RemoveGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		return fromRegistry(err)
	}
	user, conn := grantSubject(g.Rule)
	api.Audit.AdminChange(user, conn, adminDetail(r, fmt.Sprintf("removed the runtime grant %s (%s), added because %q", g.ID, describeRule(g.Rule), g.Reason)))
	return write(w, http.StatusOK, map[string]any{"removed": g.ID, "grant": viewGrant(g)})
}

// grantSubject is the user and the connector a grant's audit event is
// filed under: each when the rule names exactly one, so that the log of
// that user or connector shows who was let in, and why.
func grantSubject(rule grants.Rule) (user, connector string) {
	if len(rule.Sources) == 1 {
		user, _ = strings.CutPrefix(rule.Sources[0], "user:")
		if user == rule.Sources[0] {
			user = ""
		}
	}
	if len(rule.Connectors) == 1 && !strings.Contains(rule.Connectors[0], "*") {
		connector = rule.Connectors[0]
	}
	return user, connector
}

// describeRule says what a rule grants, in the Caddyfile's words, for
// the audit log.
func describeRule(rule grants.Rule) string {
	parts := []string{"src " + strings.Join(rule.Sources, " ")}
	for _, f := range []struct {
		name string
		vals []string
	}{
		{"role", nonEmpty(string(rule.Role))}, {"connectors", rule.Connectors}, {"tools", rule.Tools},
		{"resources", rule.Resources}, {"templates", rule.Templates}, {"prompts", rule.Prompts},
		{"operations", nonEmpty(rule.Operations)},
	} {
		if len(f.vals) > 0 {
			parts = append(parts, f.name+" "+strings.Join(f.vals, " "))
		}
	}
	return strings.Join(parts, "; ")
}

// nonEmpty is s as a list: empty when s is.
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// unknownConnectors warns of the connectors rule names that the gateway
// serves none of, as provisioning warns of the config's: a typo grants
// nothing, and the admin should hear of it now.
func (api *API) unknownConnectors(rule grants.Rule) []string {
	p, err := grants.New([]grants.Rule{rule})
	if err != nil {
		return nil // checked already; nothing to say
	}
	var ids []string
	for _, c := range api.Live.Current().Connectors() {
		ids = append(ids, c.ID)
	}
	var out []string
	for _, name := range p.UnknownConnectors(ids) {
		out = append(out, fmt.Sprintf("no connector matches %q: the grant allows nothing there until one does", name))
	}
	return out
}
