package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// approval is one approval request as GET /mcpgate/approvals lists it.
type approval struct {
	ID         string          `json:"id"`
	Caller     string          `json:"caller"`
	Connector  string          `json:"connector"`
	Tool       string          `json:"tool"`
	ArgsSHA256 string          `json:"args_sha256"`
	State      string          `json:"state"`
	Arguments  json.RawMessage `json:"arguments"`
	Created    time.Time       `json:"created"`
	Expires    time.Time       `json:"expires"`
	DecidedBy  string          `json:"decided_by"`
	Decided    time.Time       `json:"decided"`
}

// approvalsAnswer answers GET /mcpgate/approvals.
type approvalsAnswer struct {
	Approvals []approval `json:"approvals"`
}

// decidedAnswer answers POST /mcpgate/approvals/{id}/approve|deny.
type decidedAnswer struct {
	Approval approval `json:"approval"`
}

// approvalsList runs `approvals list`.
func (c *cli) approvalsList([]string) error {
	uri := "/mcpgate/approvals"
	if c.boolean("detail") {
		uri += "?detail=1"
	}
	return call(c, http.MethodGet, uri, nil, printApprovals)
}

// approvalsApprove runs `approvals approve`.
func (c *cli) approvalsApprove(args []string) error {
	return call(c, http.MethodPost, "/mcpgate/approvals/"+url.PathEscape(args[0])+"/approve", nil, printDecided)
}

// approvalsDeny runs `approvals deny`.
func (c *cli) approvalsDeny(args []string) error {
	return call(c, http.MethodPost, "/mcpgate/approvals/"+url.PathEscape(args[0])+"/deny", nil, printDecided)
}

// approvalsListFlags defines the flags of `approvals list`.
func approvalsListFlags(cmd *cobra.Command) {
	cmd.Flags().Bool("detail", false, "Print each call's arguments too")
}

// printApprovals prints the approval requests, pending first, and with
// --detail the arguments of each under it.
func printApprovals(w io.Writer, v approvalsAnswer) {
	fmt.Fprintln(w, "ID\tSTATE\tCALLER\tCONNECTOR\tTOOL\tEXPIRES\tDECIDED BY")
	for _, a := range v.Approvals {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Caller, a.Connector, a.Tool,
			a.Expires.Local().Format(time.DateTime), oneLine(a.DecidedBy, 40))
		if len(a.Arguments) > 0 {
			fmt.Fprintf(w, "  arguments: %s\n", jsonText(a.Arguments))
		}
	}
}

// printDecided says what became of a request.
func printDecided(w io.Writer, v decidedAnswer) {
	a := v.Approval
	fmt.Fprintf(w, "Approval %s is %s: %s calling %s/%s.\n", a.ID, a.State, a.Caller, a.Connector, a.Tool)
	if a.State == "approved" {
		fmt.Fprintf(w, "The same call, with the same arguments, goes through once until %s.\n", a.Expires.Local().Format(time.DateTime))
	}
}
