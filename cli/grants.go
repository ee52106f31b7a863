package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// grantsCheck runs `grants check`.
func (c *cli) grantsCheck([]string) error {
	q := url.Values{"user": {c.str("user")}}
	if groups, _ := c.flags.GetStringSlice("groups"); len(groups) > 0 {
		q.Set("groups", strings.Join(groups, ","))
	}
	q["tool"], _ = c.flags.GetStringArray("tool")
	return call(c, http.MethodGet, "/mcpgate/grants?"+q.Encode(), nil, printGrants)
}

// printGrants prints what a caller may do with each connector, and the
// decision on each tool asked about.
func printGrants(w io.Writer, v grantsAnswer) {
	who, role := v.User, "a user"
	if len(v.Groups) > 0 {
		who += " (groups " + strings.Join(v.Groups, ", ") + ")"
	}
	if v.Admin {
		role = "an admin"
	}
	fmt.Fprintf(w, "%s is %s.\n", who, role)
	fmt.Fprintln(w, "CONNECTOR\tVISIBLE\tACCESS")
	for _, gc := range v.Connectors {
		fmt.Fprintf(w, "%s\t%s\t%s\n", gc.ID, yesNo(gc.Visible), yesNo(gc.Access))
	}
	printDecisions(w, v.Connectors)
}

// printDecisions prints the decision on each tool named, and the grant
// that made it: a config grant by its index, a runtime one by its id and
// the reason it was added for.
func printDecisions(w io.Writer, conns []grantConnector) {
	header := false
	for _, gc := range conns {
		for _, d := range gc.Tools {
			if !header {
				fmt.Fprintln(w, "\nTOOL\tOPERATION\tDECISION\tBY")
				header = true
			}
			decision, by := "deny", "no grant"
			if d.Allowed {
				decision, by = "allow", decidedBy(d)
			}
			fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\n", gc.ID, d.Tool, d.Operation, decision, by)
		}
	}
}

// decidedBy names the grant that allowed d.
func decidedBy(d grantDecision) string {
	if d.Source == "runtime" {
		return fmt.Sprintf("runtime grant %s (reason: %s)", d.GrantID, oneLine(d.Reason, 60))
	}
	by := fmt.Sprintf("grant %d", d.Rule)
	if d.Grant != nil {
		by += " (src " + strings.Join(d.Grant.Sources, " ") + ")"
	}
	return by
}

// grantRule is a grant's rule as the admin API's JSON has it, the
// Caddyfile grant's fields.
type grantRule struct {
	Sources    []string `json:"src"`
	Role       string   `json:"role,omitempty"`
	Connectors []string `json:"connectors,omitempty"`
	Tools      []string `json:"tools,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Templates  []string `json:"templates,omitempty"`
	Prompts    []string `json:"prompts,omitempty"`
	Operations string   `json:"operations,omitempty"`
	Approve    []string `json:"approve,omitempty"`
}

// addGrantRequest is the body of POST /mcpgate/grants.
type addGrantRequest struct {
	grantRule
	Reason string `json:"reason"`
}

// grant is one grant as GET /mcpgate/grants lists it.
type grant struct {
	Source string `json:"source"`
	Index  int    `json:"index"`
	ID     string `json:"id"`
	grantRule
	Reason  string    `json:"reason"`
	Created time.Time `json:"created"`
	By      string    `json:"by"`
}

// grantsListAnswer answers GET /mcpgate/grants without a caller.
type grantsListAnswer struct {
	Grants []grant `json:"grants"`
}

// addedGrant answers POST /mcpgate/grants.
type addedGrant struct {
	grant
	Warnings []string `json:"warnings"`
}

// removedGrant answers DELETE /mcpgate/grants/{id}.
type removedGrant struct {
	Removed string `json:"removed"`
	Grant   grant  `json:"grant"`
}

// grantsList runs `grants list`.
func (c *cli) grantsList([]string) error {
	return call(c, http.MethodGet, "/mcpgate/grants", nil, printGrantList)
}

// grantsAdd runs `grants add`.
func (c *cli) grantsAdd([]string) error {
	req, err := c.grantRequest()
	if err != nil {
		return err
	}
	return call(c, http.MethodPost, "/mcpgate/grants", req, printAddedGrant)
}

// grantsRemove runs `grants remove`.
func (c *cli) grantsRemove(args []string) error {
	return call(c, http.MethodDelete, "/mcpgate/grants/"+url.PathEscape(args[0]), nil, printRemovedGrant)
}

// grantRequest reads the grant that the flags of `grants add` describe.
// --users and --groups are short for --src user:… and group:…; the admin
// API checks the rest, as the Caddyfile's grants are checked.
func (c *cli) grantRequest() (addGrantRequest, error) {
	list := func(name string) []string { v, _ := c.flags.GetStringSlice(name); return v }
	req := addGrantRequest{Reason: c.str("reason"), grantRule: grantRule{
		Sources: list("src"), Role: c.str("role"), Connectors: list("connectors"), Tools: list("tools"),
		Resources: list("resources"), Templates: list("templates"), Prompts: list("prompts"), Operations: c.str("operations"),
		Approve: list("approve"),
	}}
	for _, u := range list("users") {
		req.Sources = append(req.Sources, "user:"+u)
	}
	for _, g := range list("groups") {
		req.Sources = append(req.Sources, "group:"+g)
	}
	if len(req.Sources) == 0 {
		return req, errors.New("say whom the grant is for with --users, --groups or --src")
	}
	return req, nil
}

// grantsAddFlags defines the flags of `grants add`: the fields of a
// Caddyfile grant, and the reason.
func grantsAddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("reason", "", "Why the grant is made, for the audit log (required)")
	f.StringSlice("users", nil, "The users it is for, comma separated")
	f.StringSlice("groups", nil, "The groups it is for, comma separated")
	f.StringSlice("src", nil, "Whom it is for as the Caddyfile's src says it: user:<id>, group:<name> or *")
	f.String("role", "", "user (default) or admin")
	f.StringSlice("connectors", nil, "Connector ids or globs it covers, comma separated")
	f.StringSlice("tools", nil, "Tool globs over <connector>/<tool>, comma separated")
	f.StringSlice("resources", nil, "Resource globs over <connector>/<uri>, comma separated")
	f.StringSlice("templates", nil, "Resource template globs over <connector>/<template>, comma separated")
	f.StringSlice("prompts", nil, "Prompt globs over <connector>/<prompt>, comma separated")
	f.String("operations", "", "read to allow only read-only tools")
	f.StringSlice("approve", nil, "write, or tool globs, whose calls wait for an approver, comma separated")
	_ = cmd.MarkFlagRequired("reason")
}

// printGrantList prints every grant, the config's first.
func printGrantList(w io.Writer, v grantsListAnswer) {
	fmt.Fprintln(w, "ID\tSOURCE\tSRC\tROLE\tGRANTS\tCREATED\tBY\tREASON")
	for _, g := range v.Grants {
		id, created := g.ID, "-"
		if g.Source == "config" {
			id = strconv.Itoa(g.Index)
		}
		if !g.Created.IsZero() {
			created = g.Created.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, g.Source, strings.Join(g.Sources, " "), cmp.Or(g.Role, "user"),
			describeGrant(g.grantRule), created, cmp.Or(g.By, "-"), oneLine(g.Reason, 60))
	}
}

// describeGrant says what a grant covers, in the Caddyfile's words.
func describeGrant(r grantRule) string {
	var parts []string
	for _, f := range []struct {
		name string
		vals []string
	}{
		{"connectors", r.Connectors}, {"tools", r.Tools}, {"resources", r.Resources},
		{"templates", r.Templates}, {"prompts", r.Prompts}, {"approve", r.Approve},
	} {
		if len(f.vals) > 0 {
			parts = append(parts, f.name+" "+strings.Join(f.vals, " "))
		}
	}
	if r.Operations != "" {
		parts = append(parts, "operations "+r.Operations)
	}
	return strings.Join(parts, "; ")
}

// printAddedGrant prints a grant just added, and any warning about it.
func printAddedGrant(w io.Writer, v addedGrant) {
	fmt.Fprintf(w, "Added grant %s for %s: %s.\n", v.ID, strings.Join(v.Sources, " "), describeGrant(v.grantRule))
	fmt.Fprintf(w, "It applies from the next request on. Remove it with: caddy mcpgate grants remove %s\n", v.ID)
	for _, warning := range v.Warnings {
		fmt.Fprintf(w, "Warning: %s.\n", warning)
	}
}

// printRemovedGrant prints a grant just removed.
func printRemovedGrant(w io.Writer, v removedGrant) {
	fmt.Fprintf(w, "Removed grant %s (%s), added because: %s\n", v.Removed, describeGrant(v.Grant.grantRule), v.Grant.Reason)
}
