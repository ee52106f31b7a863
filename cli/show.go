package cli

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printShow prints one connector, a field a line.
func printShow(w io.Writer, v adminConnector) {
	state, reason, drifted := connectionState(v), "", ""
	if state == "-" {
		state = "" // no OAuth, nothing to connect
	}
	if conn := v.Connection; conn != nil {
		if !conn.Since.IsZero() {
			state += " since " + conn.Since.Format(time.RFC3339)
		}
		reason = conn.Reason
	}
	if v.Tools != nil {
		drifted = strings.Join(v.Tools.Drifted, ", ")
	}
	fields := [][2]string{
		{"id", v.ID}, {"source", v.Source}, {"url", v.URL}, {"auth", authSummary(v)},
		{"title", v.Title}, {"description", v.Description},
		{"connection", state}, {"reason", reason}, {"tools", toolsState(v.Tools)}, {"drifted", drifted},
	}
	for _, f := range fields {
		if f[1] != "" {
			fmt.Fprintf(w, "%s:\t%s\n", f[0], f[1])
		}
	}
}
