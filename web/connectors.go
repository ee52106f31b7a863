package web

import (
	"cmp"
	"context"
	"crypto/hmac"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// connectorView is one connector in GET /connectors: its status as the
// gateway sees it, in words a person reads, and its OAuth connection
// where it has one. The page shows the same fields, so that a client sees
// what a person sees.
type connectorView struct {
	mcpmux.ConnectorStatus
	// Title names the connector for people: the id when nothing else
	// does.
	Title string `json:"title"`
	// Description says what the connector offers, if anything does.
	Description string `json:"description,omitempty"`
	// Label is the status as the page shows it: Ready, Needs auth…
	Label string `json:"status_label"`
	// Hint says what the caller can do about the status.
	Hint string `json:"hint,omitempty"`
	// Group is the status filter's group that the connector is in.
	Group connectors.Group `json:"group"`
	// Consent is "per_user" or "shared", for an OAuth connector.
	Consent string `json:"consent,omitempty"`
	// State is the OAuth connection state.
	State connectors.State `json:"state,omitempty"`
	// DisconnectReason says why a connection is not active: disconnected,
	// refused at a refresh, expired, broken or misconfigured.
	DisconnectReason string `json:"disconnect_reason,omitempty"`
	// Retrying tells that the connection is expired only because the
	// provider could not be reached: its tokens are kept, and the next
	// call tries again, so that reconnecting is not the fix.
	Retrying bool `json:"retrying,omitempty"`
	// CanConnect tells whether the caller may connect or disconnect it.
	CanConnect bool `json:"can_connect,omitempty"`
	// Account is whose account the connection uses, as the provider
	// says, and Scopes what it granted: the caller's own connection, or
	// the shared one, which only an admin sees whose it is (another user
	// sees the account "shared connection", and no scopes).
	Account *oauthflow.Account `json:"account,omitempty"`
	Scopes  []string           `json:"scopes,omitempty"`
}

// serveConnectors answers GET /connectors: JSON, or the Connectors page
// for a browser, of the connectors in the group ?status= names (all by
// default).
func (h *Handler) serveConnectors(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	q := r.URL.Query()
	group, err := connectors.ParseGroup(q.Get("status"))
	if err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	views := h.connectorViews(r, c)
	if wantsHTML(r) {
		return h.writeConnectorsPage(w, r, q, c, group, views)
	}
	NoStore(w.Header())
	writeJSON(w, http.StatusOK, map[string]any{"connectors": inGroup(views, group)})
	return nil
}

// connectorViews lists the caller's connectors with their statuses.
func (h *Handler) connectorViews(r *http.Request, c grants.Caller) []connectorView {
	statuses := h.o.Mux.Statuses(r.Context(), c)
	view := h.o.Policy.For(c)
	out := make([]connectorView, len(statuses))
	for i, st := range statuses {
		out[i] = h.connectorView(r.Context(), view, c, st)
	}
	return out
}

// connectorView is connector st as caller c, whose grants are view, sees
// it.
func (h *Handler) connectorView(ctx context.Context, view *grants.View, c grants.Caller, st mcpmux.ConnectorStatus) connectorView {
	v := connectorView{ConnectorStatus: st, Title: cmp.Or(st.Title, st.ID), Description: st.Description}
	if m, consent, ok := h.oauth(st.ID); ok && st.Status != mcpmux.StatusNoAccess {
		conn := m.Connection(ctx, st.ID, c.ID)
		v.Consent, v.State, v.Retrying = string(consent), conn.State, conn.Retrying
		if conn.State != connectors.StateActive {
			v.DisconnectReason = conn.Reason
		}
		v.CanConnect = mayConnect(view, st.ID, consent)
		v.Account, v.Scopes = granted(ctx, m, view, st.ID, c.ID, consent)
	}
	v.Group = connectors.GroupOf(connectors.Status(st.Status), v.State)
	v.Label, v.Hint = label(st.Status), hint(v)
	return v
}

// sharedAccount is the account a shared connection shows to a user who
// is no admin: that it is shared, and not whose it is.
var sharedAccount = &oauthflow.Account{Name: "shared connection"}

// granted is the account and scopes of user's connection to connector id
// as a caller whose grants are view sees them. A shared connection is an
// admin's account, often named by their email: only an admin sees whose
// it is and what it grants; another user sees only that it is shared.
func granted(ctx context.Context, m *oauthflow.Manager, view *grants.View, id, user string, consent oauthflow.Consent) (*oauthflow.Account, []string) {
	g := m.Granted(ctx, id, user)
	switch {
	case consent != oauthflow.Shared || view.IsAdmin():
		return g.Account, g.Scopes
	case g.Account != nil || len(g.Scopes) > 0:
		return sharedAccount, nil
	}
	return nil, nil
}

// inGroup returns the views of group g, never nil: the JSON list is [],
// not null, when none is.
func inGroup(views []connectorView, g connectors.Group) []connectorView {
	out := []connectorView{}
	for _, v := range views {
		if g.Has(v.Group) {
			out = append(out, v)
		}
	}
	return out
}

// oauth returns connector id's OAuth manager and consent, if it uses
// OAuth.
func (h *Handler) oauth(id string) (*oauthflow.Manager, oauthflow.Consent, bool) {
	if h.o.OAuth == nil {
		return nil, "", false
	}
	return h.o.OAuth(id)
}

// mayConnect reports whether a view may start or end consent for a
// connector: any user with access for per-user consent, an admin for
// shared consent.
func mayConnect(view *grants.View, id string, consent oauthflow.Consent) bool {
	return view.HasItems(id) && (consent != oauthflow.Shared || view.IsAdmin())
}

// writeConnectorsPage writes the Connectors page: the cards of group's
// connectors, the filter, and a banner saying how the last action went.
func (h *Handler) writeConnectorsPage(w http.ResponseWriter, r *http.Request, q url.Values, c grants.Caller, group connectors.Group, views []connectorView) error {
	page := ConnectorsPage{Back: h.pageURL(), Total: len(views), Filters: filters(views, group)}
	// A connect link names the user it was made for: opened by anyone
	// else, it connects nothing and says so, so that a link an agent was
	// handed cannot lure another user into consenting.
	foreign := q.Has("for") && !hmac.Equal([]byte(q.Get("for")), []byte(h.o.ConnectTag(c.ID)))
	admin := h.o.Policy.For(c).IsAdmin()
	for _, v := range inGroup(views, group) {
		card := card(v)
		card.CanConnect = v.CanConnect && !foreign
		card.Focus = v.ID == q.Get("connect") && !foreign
		if admin {
			card.Drift = h.drift(v.ID)
		}
		page.Connectors = append(page.Connectors, card)
	}
	status := http.StatusOK
	if foreign {
		status = http.StatusForbidden
	}
	page.Banner = banner(q, foreign)
	page.Approvals = h.pendingApprovals(r, c)
	return writePage(w, status, func(out io.Writer) error { return RenderConnectors(out, page) })
}

// banner is what the Connectors page says on top: the refusal of a
// foreign link, or the outcome a consent flow returned with.
func banner(q url.Values, foreign bool) *Banner {
	switch {
	case foreign:
		return &Banner{Class: "fail", Text: "This link was made for another user: it connects only the account of whoever asked for it. " +
			"Sign in as that user to connect, or open the Connectors page yourself."}
	case q.Get("error") != "":
		return &Banner{Class: "fail", Text: "Connecting failed: " + q.Get("error_description") + " (" + q.Get("error") + ")"}
	case q.Get("connected") != "":
		return &Banner{Class: "ok", Text: "Connected " + q.Get("connected") + "."}
	case q.Get("disconnected") != "":
		return &Banner{Class: "ok", Text: "Disconnected " + q.Get("disconnected") + "."}
	}
	return nil
}

// pageURL is the URL of the Connectors page: absolute under PublicURL,
// which OAuth connectors require, so that consent flows can return to it.
func (h *Handler) pageURL() string {
	return strings.TrimSuffix(h.o.PublicURL, "/") + "/connectors"
}

// wantsHTML reports whether a browser asks for a page: text/html is
// preferred over JSON in Accept.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	html := strings.Index(accept, "text/html")
	if html < 0 {
		return false
	}
	j := strings.Index(accept, "application/json")
	return j < 0 || html < j
}

// servePresets answers GET /connectors/presets: the preset catalog, the
// same as the admin API's, with no secret.
func (h *Handler) servePresets(w http.ResponseWriter, _ *http.Request, _ grants.Caller) error {
	writeJSON(w, http.StatusOK, map[string]any{"presets": h.o.Presets})
	return nil
}
