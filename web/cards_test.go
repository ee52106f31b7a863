package web

import (
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// TestLabels: every status the page can show has its label and a hint
// saying who must act; a status this version does not know is shown as
// it is.
func TestLabels(t *testing.T) {
	status := func(s string) mcpmux.ConnectorStatus { return mcpmux.ConnectorStatus{ID: "x", Status: s} }
	tests := []struct {
		view        connectorView
		label, hint string
	}{
		{connectorView{ConnectorStatus: status("ready")}, "Ready", ""},
		{connectorView{ConnectorStatus: status("needs_auth"), Consent: "per_user", CanConnect: true, Group: connectors.GroupInactive},
			"Needs auth", "Connect your account to use it."},
		{connectorView{ConnectorStatus: status("needs_auth"), Consent: "per_user", CanConnect: true, Group: connectors.GroupNeedsAttention},
			"Needs auth", "Its connection stopped working: reconnect to use it again."},
		{connectorView{ConnectorStatus: status("needs_auth"), Consent: "shared", CanConnect: true, Group: connectors.GroupInactive},
			"Needs auth", "Connect it once for everyone: its consent is shared."},
		{connectorView{ConnectorStatus: status("needs_auth"), Consent: "shared", Group: connectors.GroupInactive},
			"Needs auth", "It is shared and not connected yet: an admin connects it for everyone."},
		{connectorView{ConnectorStatus: status("needs_auth"), Group: connectors.GroupInactive},
			"Needs auth", "Ask your admin to connect it."},
		{connectorView{ConnectorStatus: status("misconfigured")}, "Misconfigured", "It cannot work until an admin changes its settings: tell your admin."},
		{connectorView{ConnectorStatus: status("no_access")}, "No access", "None of your grants lets you use it: ask your admin for access."},
		{connectorView{ConnectorStatus: status("error")}, "Error", "The gateway cannot reach it right now. Try again later, and tell your admin if it lasts."},
		{connectorView{ConnectorStatus: status("error"), Consent: "per_user", CanConnect: true, Group: connectors.GroupNeedsAttention,
			State: connectors.StateExpired, Retrying: true},
			"Error", "Its provider cannot be reached right now. Your connection is kept and is tried again on your next use: " +
				"there is nothing to reconnect. Tell your admin if it lasts."},
		{connectorView{ConnectorStatus: status("disabled"), State: connectors.StateActive},
			"Disabled", "An admin turned it off. Your connection is kept: it works again as soon as it is turned back on."},
		{connectorView{ConnectorStatus: status("disabled")}, "Disabled", "An admin turned it off: ask your admin if you need it."},
		{connectorView{ConnectorStatus: status("paused")}, "paused", ""},
	}
	for _, tt := range tests {
		if got := label(tt.view.Status); got != tt.label {
			t.Errorf("label(%q) = %q, want %q", tt.view.Status, got, tt.label)
		}
		if got := hint(tt.view); got != tt.hint {
			t.Errorf("hint of %s (consent %q, can connect %v, %s) = %q, want %q",
				tt.view.Status, tt.view.Consent, tt.view.CanConnect, tt.view.Group, got, tt.hint)
		}
	}
}

// TestCardReason: a card gives the connection's own reason first, and
// leaves out the mux's request for consent, which its hint says better.
func TestCardReason(t *testing.T) {
	tests := []struct {
		view connectorView
		want string
	}{
		{connectorView{ConnectorStatus: mcpmux.ConnectorStatus{Status: "needs_auth", Reason: "Connector x needs your consent."}}, ""},
		{connectorView{ConnectorStatus: mcpmux.ConnectorStatus{Status: "needs_auth", Reason: "Connector x needs your consent."},
			DisconnectReason: "disconnected by alice"}, "disconnected by alice"},
		{connectorView{ConnectorStatus: mcpmux.ConnectorStatus{Status: "error", Reason: "dial tcp: connection refused"}}, "dial tcp: connection refused"},
		{connectorView{ConnectorStatus: mcpmux.ConnectorStatus{Status: "error", Reason: "refreshing the token of x: dial tcp: connection refused"},
			State: connectors.StateExpired, Retrying: true, DisconnectReason: "the provider could not be reached; mcpgate retries"},
			"the provider could not be reached; mcpgate retries"},
	}
	for _, tt := range tests {
		if got := card(tt.view).Reason; got != tt.want {
			t.Errorf("reason of %+v = %q, want %q", tt.view, got, tt.want)
		}
	}
}

// TestToolCount: the tool count in words, or nothing when not known.
func TestToolCount(t *testing.T) {
	n := func(i int) *int { return &i }
	for in, want := range map[*int]string{nil: "", n(0): "None available to you", n(1): "1 available to you", n(12): "12 available to you"} {
		if got := toolCount(in); got != want {
			t.Errorf("toolCount(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestAccountName: a card names an account by what the provider gave.
func TestAccountName(t *testing.T) {
	for _, tt := range []struct {
		account *oauthflow.Account
		want    string
	}{
		{nil, ""},
		{&oauthflow.Account{Subject: "u-1", Email: "alice@example.com", Name: "Alice"}, "Alice <alice@example.com>"},
		{&oauthflow.Account{Subject: "u-1", Email: "alice@example.com"}, "alice@example.com"},
		{&oauthflow.Account{Subject: "u-1", Name: "Alice"}, "Alice"},
		{&oauthflow.Account{Subject: "u-1"}, "u-1"},
	} {
		if got := accountName(tt.account); got != tt.want {
			t.Errorf("accountName(%+v) = %q, want %q", tt.account, got, tt.want)
		}
	}
}

// TestCardActions: a card offers what can help. A connection that holds
// its tokens offers Disconnect, and Reconnect only while it is active and
// enabled: one kept while its provider cannot be reached is retried, so
// a reconnect is not pushed as the fix. One that broke offers Reconnect,
// one never made Connect, and a disabled one without tokens nothing.
func TestCardActions(t *testing.T) {
	const (
		connect    = `<button class="primary" type="submit" name="action" value="connect">Connect</button>`
		reconnect  = `<button class="primary" type="submit" name="action" value="connect">Reconnect</button>`
		refresh    = `<button type="submit" name="action" value="reconnect">Reconnect</button>`
		disconnect = `<button type="submit" name="action" value="disconnect">Disconnect</button>`
	)
	view := func(status string, state connectors.State, group connectors.Group, retrying bool) connectorView {
		return connectorView{ConnectorStatus: mcpmux.ConnectorStatus{ID: "x", Status: status}, Title: "x",
			State: state, Group: group, Retrying: retrying, CanConnect: true}
	}
	tests := []struct {
		name string
		view connectorView
		want []string
	}{
		{"active", view("ready", connectors.StateActive, connectors.GroupActive, false), []string{refresh, disconnect}},
		{"provider down", view("error", connectors.StateExpired, connectors.GroupNeedsAttention, true), []string{disconnect}},
		{"provider down, token still good", view("ready", connectors.StateExpired, connectors.GroupActive, true), []string{disconnect}},
		{"refused", view("needs_auth", connectors.StateReauthRequired, connectors.GroupNeedsAttention, false), []string{reconnect}},
		{"expired without refresh token", view("needs_auth", connectors.StateExpired, connectors.GroupNeedsAttention, false), []string{reconnect}},
		{"never connected", view("needs_auth", connectors.StateNone, connectors.GroupInactive, false), []string{connect}},
		{"disabled, tokens kept", view("disabled", connectors.StateActive, connectors.GroupInactive, false), []string{disconnect}},
		{"disabled, provider down", view("disabled", connectors.StateExpired, connectors.GroupInactive, true), []string{disconnect}},
		{"disabled, not connected", view("disabled", connectors.StateNone, connectors.GroupInactive, false), nil},
	}
	for _, tt := range tests {
		c := card(tt.view)
		c.CanConnect = true
		var b strings.Builder
		if err := RenderConnectors(&b, ConnectorsPage{Back: "https://gw.test/connectors", Total: 1, Connectors: []Connector{c}}); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		got := []string{}
		for _, button := range []string{connect, reconnect, refresh, disconnect} {
			if strings.Contains(page, button) {
				got = append(got, button)
			}
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s: the card offers\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}
