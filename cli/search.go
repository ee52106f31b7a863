package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// searchAnswer answers GET /mcpgate/tools/search.
type searchAnswer struct {
	User   string   `json:"user"`
	Groups []string `json:"groups"`
	Query  string   `json:"query"`
	Tools  []struct {
		Connector   string `json:"connector"`
		Tool        string `json:"tool"`
		Name        string `json:"name"`
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"tools"`
	Skipped []struct {
		Connector string `json:"connector"`
		Reason    string `json:"reason"`
	} `json:"skipped"`
}

// toolsSearch runs `tools search`: the words of the query may be one
// argument or several.
func (c *cli) toolsSearch(args []string) error {
	q := url.Values{"q": {strings.Join(args, " ")}, "user": {c.str("user")}}
	if groups, _ := c.flags.GetStringSlice("groups"); len(groups) > 0 {
		q.Set("groups", strings.Join(groups, ","))
	}
	if limit, _ := c.flags.GetInt("limit"); limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return call(c, http.MethodGet, "/mcpgate/tools/search?"+q.Encode(), nil, printSearch)
}

// searchFlags defines the flags of `tools search`.
func searchFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("user", "", "Whose search: the caller's identity (required)")
	f.StringSlice("groups", nil, "The caller's groups, comma separated")
	f.Int("limit", 0, "At most this many tools, 1 to 50 (default 10)")
	_ = cmd.MarkFlagRequired("user")
}

// printSearch prints what the caller's search found, best first, and the
// connectors it could not search.
func printSearch(w io.Writer, v searchAnswer) {
	who := v.User
	if len(v.Groups) > 0 {
		who += " (groups " + strings.Join(v.Groups, ", ") + ")"
	}
	if len(v.Tools) == 0 {
		fmt.Fprintf(w, "%s finds no tool for %q.\n", who, v.Query)
	} else {
		fmt.Fprintf(w, "%s finds, best first, for %q:\n", who, v.Query)
		fmt.Fprintln(w, "TOOL\tCONNECTOR\tTITLE\tDESCRIPTION")
		for _, t := range v.Tools {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Connector, oneLine(t.Title, 30), oneLine(t.Description, 60))
		}
	}
	if len(v.Skipped) > 0 {
		fmt.Fprintln(w, "\nNot searched:")
		for _, s := range v.Skipped {
			fmt.Fprintf(w, "  %s: %s\n", s.Connector, oneLine(s.Reason, 200))
		}
	}
}
