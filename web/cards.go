package web

import (
	"cmp"
	"strconv"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// labels are the statuses in the words the page shows.
var labels = map[string]string{
	mcpmux.StatusReady:         "Ready",
	mcpmux.StatusNeedsAuth:     "Needs auth",
	mcpmux.StatusMisconfigured: "Misconfigured",
	mcpmux.StatusNoAccess:      "No access",
	mcpmux.StatusFailed:        "Error",
	mcpmux.StatusDisabled:      "Disabled",
}

// label is status in words; a status this version does not know is
// shown as it is rather than hidden.
func label(status string) string {
	if l, ok := labels[status]; ok {
		return l
	}
	return status
}

// hint says what the caller of v can do about its status: who must act,
// and how.
func hint(v connectorView) string {
	switch v.Status {
	case mcpmux.StatusNeedsAuth:
		return needsAuthHint(v)
	case mcpmux.StatusMisconfigured:
		return "It cannot work until an admin changes its settings: tell your admin."
	case mcpmux.StatusNoAccess:
		return "None of your grants lets you use it: ask your admin for access."
	case mcpmux.StatusFailed:
		if v.Retrying {
			return "Its provider cannot be reached right now. Your connection is kept and is tried again on your next use: " +
				"there is nothing to reconnect. Tell your admin if it lasts."
		}
		return "The gateway cannot reach it right now. Try again later, and tell your admin if it lasts."
	case mcpmux.StatusDisabled:
		if v.State == connectors.StateActive {
			return "An admin turned it off. Your connection is kept: it works again as soon as it is turned back on."
		}
		return "An admin turned it off: ask your admin if you need it."
	}
	return ""
}

// needsAuthHint is the hint of a connector waiting for consent: the
// caller's own, or an admin's for a shared one.
func needsAuthHint(v connectorView) string {
	shared := v.Consent == string(oauthflow.Shared)
	switch {
	case v.CanConnect && v.Group == connectors.GroupNeedsAttention:
		return "Its connection stopped working: reconnect to use it again."
	case v.CanConnect && shared:
		return "Connect it once for everyone: its consent is shared."
	case v.CanConnect:
		return "Connect your account to use it."
	case shared:
		return "It is shared and not connected yet: an admin connects it for everyone."
	}
	return "Ask your admin to connect it."
}

// card is view v as a card of the page, before the page decides whether
// it may offer to connect.
func card(v connectorView) Connector {
	return Connector{
		ID: v.ID, Title: v.Title, Description: v.Description,
		Status: v.Status, Label: v.Label, Reason: reason(v), Hint: v.Hint,
		Group: string(v.Group), State: string(v.State), Tools: toolCount(v.ToolCount),
		Account: accountName(v.Account), Scopes: v.Scopes, Kept: kept(v),
	}
}

// kept reports whether v's connection holds tokens that serve, or will
// serve again without a consent: an active one, or one whose provider
// could not be reached and that is retried. Such a card offers to
// disconnect, and never pushes a reconnect, which cannot help while the
// provider is down.
func kept(v connectorView) bool {
	return v.State == connectors.StateActive || v.Retrying
}

// accountName is how a card names an account: its name and email where
// the provider gives both, else whichever it gives, else its subject.
func accountName(a *oauthflow.Account) string {
	switch {
	case a == nil:
		return ""
	case a.Name != "" && a.Email != "":
		return a.Name + " <" + a.Email + ">"
	}
	return cmp.Or(a.Email, a.Name, a.Subject)
}

// reason is why the card's connector is not ready: the connection's own
// reason where it has one. The mux's reason for needs_auth only asks for
// consent, which the hint says better on a page.
func reason(v connectorView) string {
	if v.DisconnectReason != "" {
		return v.DisconnectReason
	}
	if v.Status == mcpmux.StatusNeedsAuth {
		return ""
	}
	return v.Reason
}

// toolCount says how many tools the caller may use, or nothing while
// that is not known.
func toolCount(n *int) string {
	switch {
	case n == nil:
		return ""
	case *n == 0:
		return "None available to you"
	}
	return strconv.Itoa(*n) + " available to you"
}

// groupLabels are the filter's groups in the words the page shows.
var groupLabels = map[connectors.Group]string{
	connectors.GroupAll:            "All",
	connectors.GroupActive:         "Active",
	connectors.GroupNeedsAttention: "Needs attention",
	connectors.GroupInactive:       "Inactive",
}

// filters are the page's filter choices, each with how many of views it
// holds, current the one shown.
func filters(views []connectorView, current connectors.Group) []Filter {
	out := make([]Filter, len(connectors.Groups))
	for i, g := range connectors.Groups {
		out[i] = Filter{Group: string(g), Label: groupLabels[g], Current: g == current}
		for _, v := range views {
			if g.Has(v.Group) {
				out[i].Count++
			}
		}
	}
	return out
}

// Drift is what an admin's card says of its connector's tools and
// prompts that changed upstream: their names, hidden until approved, and
// the command that approves them.
type Drift struct {
	// Summary counts them: "2 tools and 1 prompt changed upstream,
	// hidden until approved".
	Summary string
	// Tools and Prompts are their names, as the upstream lists them:
	// upstream-controlled text, which the page escapes like any other.
	Tools, Prompts []string
	// Approve is the CLI command that approves them all.
	Approve string
}

// drift is the drift of connector id for an admin's card, or nil when
// nothing drifted. Only an admin sees it: an admin approves drift, and
// the names of hidden tools are no one else's business.
func (h *Handler) drift(id string) *Drift {
	if h.o.Drift == nil {
		return nil
	}
	tools, prompts := h.o.Drift(id)
	if len(tools) == 0 && len(prompts) == 0 {
		return nil
	}
	var counts []string
	if len(tools) > 0 {
		counts = append(counts, plural(len(tools), "tool"))
	}
	if len(prompts) > 0 {
		counts = append(counts, plural(len(prompts), "prompt"))
	}
	cmd := []string{"caddy", "mcpgate", "connectors", "tools", id, "--approve"}
	for _, t := range tools {
		cmd = append(cmd, shellWord(t))
	}
	for _, p := range prompts {
		cmd = append(cmd, shellWord("prompt:"+p))
	}
	return &Drift{
		Summary: strings.Join(counts, " and ") + " changed upstream, hidden until approved",
		Tools:   tools, Prompts: prompts, Approve: strings.Join(cmd, " "),
	}
}

// plural is n things, in words: "1 tool", "2 tools".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// shellWord is s as one word of a POSIX shell command: as it is when it
// holds only characters no shell treats specially, else single-quoted.
// A name is the upstream's choice, and an admin may paste the command
// into a terminal: a name such as "x; rm -rf ~" must stay one argument.
func shellWord(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:/@+=,", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
