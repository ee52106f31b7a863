package cli

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
)

// printList prints the connectors as a table.
func printList(w io.Writer, v connectorsAnswer) {
	if len(v.Connectors) == 0 {
		fmt.Fprintln(w, "No connectors.")
		return
	}
	fmt.Fprintln(w, "ID\tSOURCE\tAUTH\tCONSENT\tSTATE\tTOOLS\tURL")
	for _, cv := range v.Connectors {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cv.ID, cv.Source, cv.Auth, cmp.Or(cv.Consent, "-"),
			connectionState(cv), toolsState(cv.Tools), cmp.Or(cv.URL, "-"))
	}
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
	return call(c, http.MethodGet, "/mcpgate/connectors", nil, printList)
}
