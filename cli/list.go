package cli

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// listFlags defines the flags of `connectors list`.
func listFlags(cmd *cobra.Command) {
	// Without --user, a connector with per-user consent is active: each
	// user's connection is theirs, and says nothing of the connector.
	userFlag(cmd)
	cmd.Flags().String("status", "", "Only the connectors of this group: active, needs_attention, inactive or all (default all)")
}

// listedConnector is a connector in the admin list, with the status
// filter's group it is in.
type listedConnector struct {
	adminConnector
	Group string `json:"group"`
}

// printList prints the connectors as a table.
func printList(w io.Writer, v connectorsAnswer) {
	if len(v.Connectors) == 0 {
		fmt.Fprintln(w, "No connectors.")
		return
	}
	fmt.Fprintln(w, "ID\tSOURCE\tAUTH\tCONSENT\tSTATUS\tSTATE\tTOOLS\tURL")
	for _, cv := range v.Connectors {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cv.ID, cv.Source, cv.Auth, cmp.Or(cv.Consent, "-"),
			groupWords(cv.Group), connectionState(cv.adminConnector), toolsState(cv.Tools), cmp.Or(cv.URL, "-"))
	}
}

// groupWords is a status group as the table says it: "needs attention"
// for needs_attention.
func groupWords(group string) string {
	return cmp.Or(strings.ReplaceAll(group, "_", " "), "-")
}

// connectionState is a connector's shared connection state in a word.
func connectionState(v adminConnector) string {
	switch {
	case v.Connection != nil:
		return cmp.Or(v.Connection.State, "not connected")
	case v.Consent == perUser:
		return "per user"
	}
	return "-"
}

// list runs `connectors list`.
func (c *cli) list([]string) error {
	q := c.userQuery()
	if status := c.str("status"); status != "" {
		q.Set("status", status)
	}
	uri := "/mcpgate/connectors"
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	return call(c, http.MethodGet, uri, nil, printList)
}
