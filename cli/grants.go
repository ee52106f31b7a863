package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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

// printDecisions prints the decision on each tool named.
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
				decision, by = "allow", fmt.Sprintf("grant %d", d.Rule)
				if d.Grant != nil {
					by += " (src " + strings.Join(d.Grant.Sources, " ") + ")"
				}
			}
			fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\n", gc.ID, d.Tool, d.Operation, decision, by)
		}
	}
}

// grantsList runs `grants list`. (being built)
func (c *cli) grantsList([]string) error { return errors.New("grants list is not built yet") }

// grantsAdd runs `grants add`. (being built)
func (c *cli) grantsAdd([]string) error { return errors.New("grants add is not built yet") }

// grantsRemove runs `grants remove`. (being built)
func (c *cli) grantsRemove([]string) error { return errors.New("grants remove is not built yet") }

// grantsAddFlags defines the flags of `grants add`. (being built)
func grantsAddFlags(*cobra.Command) {}
