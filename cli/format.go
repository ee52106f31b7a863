package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The output for people: each printer writes one admin API answer, with
// columns as cells ending in tabs that output aligns. Nothing here calls
// the admin API.

// output writes raw, the answer to what, to out as it came with --json
// (asJSON); otherwise it decodes it and hands it to human, aligning the
// columns.
func output[T any](out io.Writer, asJSON bool, raw []byte, what string, human func(w io.Writer, v T)) error {
	if asJSON {
		_, err := out.Write(raw)
		return err
	}
	v, err := decode[T](raw, what)
	if err != nil {
		return err
	}
	return printAligned(out, v, human)
}

// decode reads raw, the answer to what, as a T.
func decode[T any](raw []byte, what string) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("the admin API answered %s with something other than the JSON expected: %v", what, err)
	}
	return v, nil
}

// printAligned prints v through human to out, aligning the columns.
func printAligned[T any](out io.Writer, v T, human func(w io.Writer, v T)) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	human(tw, v)
	return tw.Flush()
}

// printAdded prints an added connector and where to consent to it.
func printAdded(w io.Writer, v addedConnector) {
	fmt.Fprintf(w, "Added connector %s: %s.\n", v.ID, authSummary(v.adminConnector))
	switch {
	case v.Grant == grantClientCredentials:
		fmt.Fprintln(w, "No consent: it gets its token with the client credentials grant at its first call.")
		fmt.Fprintf(w, "Check the client with: caddy mcpgate connectors diagnose %s\n", v.ID)
	case v.ConsentError != "":
		fmt.Fprintf(w, "Consent could not start: %s.\n", strings.TrimSuffix(v.ConsentError, "; run diagnose"))
		fmt.Fprintf(w, "See why with: caddy mcpgate connectors diagnose %s\n", v.ID)
	case v.AuthURL != "":
		fmt.Fprintf(w, "Consent is shared: open this URL as an admin, within 10 minutes:\n  %s\n", v.AuthURL)
	case v.ConnectURL != "":
		fmt.Fprintf(w, "Each user connects at:\n  %s\n", v.ConnectURL)
	}
}

// authSummary says in a few words how a connector authenticates.
func authSummary(v adminConnector) string {
	s := v.Auth
	if v.Auth == authOAuth {
		s += fmt.Sprintf(" with %s registration, %s consent", v.Registration, cmp.Or(v.Consent, perUser))
	}
	if v.Preset != "" {
		s += ", preset " + v.Preset
	}
	return s
}

// toolsState says what a connector's tool selection holds.
func toolsState(t *toolsSummary) string {
	if t == nil {
		return "all"
	}
	s := fmt.Sprintf("%d registered", t.Registered)
	if len(t.Drifted) > 0 {
		s += fmt.Sprintf(", %d drifted", len(t.Drifted))
	}
	if len(t.DriftedPrompts) > 0 {
		s += fmt.Sprintf(", %d prompts drifted", len(t.DriftedPrompts))
	}
	return s
}

// printConnect prints the authorization URL of connector id's consent,
// which who opens.
func printConnect(id, who string) func(io.Writer, authURLAnswer) {
	return func(w io.Writer, v authURLAnswer) { printAuthURL(w, id, who, v.AuthURL) }
}

// printAuthURL tells who opens a consent's authorization URL.
func printAuthURL(w io.Writer, id, who, authURL string) {
	fmt.Fprintf(w, "To connect %s, %s opens this URL within 10 minutes:\n  %s\n", id, who, authURL)
}

// printDisconnect prints what a disconnect of connector id did.
func printDisconnect(id string) func(io.Writer, revocation) {
	return func(w io.Writer, v revocation) {
		fmt.Fprintf(w, "Disconnected %s.\n", id)
		printRevocation(w, v)
	}
}

// printRevocation says what became of a token at its provider.
func printRevocation(w io.Writer, r revocation) {
	switch {
	case r.Revoked:
		fmt.Fprintln(w, "The provider revoked the token.")
	case r.Attempted:
		fmt.Fprintf(w, "Revoking the token failed: %s.\n", cmp.Or(r.Detail, "no detail"))
	default:
		fmt.Fprintf(w, "Nothing was revoked: %s.\n", cmp.Or(r.Detail, "there was no token"))
	}
}

// printReconnect prints what a reconnect of connector id did, and the
// new consent's URL, which who opens.
func printReconnect(id, who string) func(io.Writer, reconnectAnswer) {
	return func(w io.Writer, v reconnectAnswer) {
		fmt.Fprintf(w, "Disconnected %s.\n", id)
		printRevocation(w, v.Revocation)
		printAuthURL(w, id, who, v.AuthURL)
	}
}

// printRemove prints a removal and its revocations.
func printRemove(w io.Writer, v removeAnswer) {
	fmt.Fprintf(w, "Removed connector %s.\n", v.Removed)
	for _, r := range v.Revocations {
		printRevocation(w, r)
	}
}

// printTools prints a selection and, if discovered, the upstream's
// tools.
func printTools(w io.Writer, v toolsAnswer) {
	printSelection(w, v)
	if v.Discovered != nil {
		fmt.Fprintf(w, "\nThe upstream's tools now:\n")
		printDiscovered(w, v.Discovered)
	}
	if len(v.DiscoveredPrompts) > 0 {
		fmt.Fprintf(w, "\nThe upstream's prompts now:\n")
		fmt.Fprintln(w, "PROMPT\tREGISTERED\tDESCRIPTION")
		for _, p := range v.DiscoveredPrompts {
			fmt.Fprintf(w, "%s\t%s\t%s\n", p.Name, registered(p), oneLine(p.Description, 60))
		}
	}
}

// printRegistered prints the selection just registered for connector
// id.
func printRegistered(id string) func(io.Writer, toolsAnswer) {
	return func(w io.Writer, v toolsAnswer) {
		fmt.Fprintf(w, "Registered %d tools of %s: only these enter the catalog.\n", len(v.Selection), id)
		printSelection(w, v)
	}
}

// printApproved prints what an approval of connector id's tools did.
func printApproved(id string) func(io.Writer, toolsAnswer) {
	return func(w io.Writer, v toolsAnswer) {
		approved := slices.Concat(v.Approved, prefixed("prompt:", v.ApprovedPrompts))
		if len(approved) == 0 {
			fmt.Fprintf(w, "No tool of %s had drifted.\n", id)
		} else {
			fmt.Fprintf(w, "Approved %s of %s: back in the catalog.\n", strings.Join(approved, ", "), id)
		}
		printSelection(w, v)
	}
}

// printSelection prints a connector's selection with its drift, and
// then what changed in each drifted tool and prompt.
func printSelection(w io.Writer, v toolsAnswer) {
	if v.Selection == nil {
		fmt.Fprintf(w, "%s has no tool selection: every tool the config allows enters the catalog.\n", v.Connector)
		return
	}
	fmt.Fprintln(w, "TOOL\tOPERATION\tPIN\tDRIFT")
	for _, t := range v.Selection {
		fmt.Fprintf(w, "%s\t%s\t%.12s\t%s\n", t.Name, t.Operation, pinText(t.Pin), driftSummary(t))
	}
	if v.Prompts != nil {
		fmt.Fprintln(w, "\nPROMPT\tPIN\tDRIFT")
		for _, p := range v.Prompts {
			fmt.Fprintf(w, "%s\t%.12s\t%s\n", p.Name, pinText(p.Pin), driftSummary(p))
		}
	}
	printDrift(w, "tool ", v.Selection)
	printDrift(w, "prompt ", v.Prompts)
}

// pinText is the hash of a pin, without its version, for a table: the
// JSON output has it whole.
func pinText(pin string) string {
	if _, hash, ok := strings.Cut(pin, ":"); ok {
		return hash
	}
	return pin
}

// driftSummary names the fields of t that drifted, or "-".
func driftSummary(t selectedTool) string {
	if len(t.Drift) == 0 {
		return "-"
	}
	return "changed " + strings.Join(slices.Sorted(maps.Keys(t.Drift)), ", ") + ": approve to restore"
}

// printDrift prints, for each drifted item, each changed field with its
// approved and upstream values (JSON, as the admin API gives them).
func printDrift(w io.Writer, what string, items []selectedTool) {
	for _, t := range items {
		if len(t.Drift) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nDrift of %s%s (hidden until approved):\n", what, t.Name)
		for _, field := range slices.Sorted(maps.Keys(t.Drift)) {
			c := t.Drift[field]
			fmt.Fprintf(w, "  %s: %s -> %s\n", field, jsonText(c.Approved), jsonText(c.Upstream))
		}
	}
}

// jsonText shows a JSON value on one line; absent is null.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// printDiscovered prints the upstream's tools as discovered.
func printDiscovered(w io.Writer, tools []discoveredTool) {
	fmt.Fprintln(w, "TOOL\tOPERATION\tREGISTERED\tDESCRIPTION")
	for _, t := range tools {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Operation, registered(t), oneLine(t.Description, 60))
	}
}

// registered says whether a discovered item is in the selection, and
// whether it drifted.
func registered(t discoveredTool) string {
	reg := yesNo(t.Registered)
	if t.Drifted {
		reg += ", drifted"
	}
	return reg
}

// prefixed returns names, each with prefix.
func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// printDiagnosis prints connector id's diagnosis, step by step, with
// the fixes it suggests.
func printDiagnosis(id string) func(io.Writer, diagnosis) {
	return func(w io.Writer, v diagnosis) {
		fmt.Fprintln(w, "STEP\tRESULT\tDETAIL")
		for _, s := range v.Steps {
			fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, okFailed(s.OK), s.Detail)
		}
		for _, s := range v.Steps {
			if s.Fix != "" {
				fmt.Fprintf(w, "Fix for %s: %s\n", s.Name, s.Fix)
			}
		}
		if v.OK {
			fmt.Fprintf(w, "%s can connect.\n", id)
		}
	}
}

// printAudit prints audit events as a table.
func printAudit(w io.Writer, v auditAnswer) {
	if len(v.Events) == 0 {
		fmt.Fprintln(w, "No audit events.")
		return
	}
	fmt.Fprintln(w, "TIME\tKIND\tUSER\tCONNECTOR\tTOOL\tDECISION\tOUTCOME\tDURATION\tDETAIL")
	for _, e := range v.Events {
		took := "-"
		if d := time.Duration(e.DurationMS * float64(time.Millisecond)); d > 0 {
			took = d.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.RFC3339), e.Kind,
			cmp.Or(e.User, "-"), cmp.Or(e.Connector, "-"), cmp.Or(e.Tool, "-"), cmp.Or(e.Decision, "-"),
			cmp.Or(e.Outcome, "-"), took, oneLine(e.Detail, 80))
	}
}

// printPresets prints the preset catalog as a table.
func printPresets(w io.Writer, v presetsAnswer) {
	fmt.Fprintln(w, "ID\tSOURCE\tCLIENT\tURL\tTITLE")
	for _, p := range v.Presets {
		client := yesNo(p.HasClient)
		if p.NeedsClient && !p.HasClient {
			client = "needed" // a connector for it must give one
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Source, client, p.URL, cmp.Or(p.Title, "-"))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func okFailed(b bool) string {
	if b {
		return "ok"
	}
	return "failed"
}

// oneLine shortens s to one line of at most n runes, for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return cmp.Or(s, "-")
}
