package web

import (
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
// gateway sees it, and its OAuth connection where it has one.
type connectorView struct {
	mcpmux.ConnectorStatus
	// Consent is "per_user" or "shared", for an OAuth connector.
	Consent string `json:"consent,omitempty"`
	// State is the OAuth connection state.
	State connectors.State `json:"state,omitempty"`
	// DisconnectReason says why a connection was disconnected.
	DisconnectReason string `json:"disconnect_reason,omitempty"`
	// CanConnect tells whether the caller may connect or disconnect it.
	CanConnect bool `json:"can_connect,omitempty"`
}

// serveConnectors answers GET /connectors: JSON, or the Connectors page
// for a browser.
func (h *Handler) serveConnectors(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	views := h.connectorViews(r, c)
	if wantsHTML(r) {
		return h.writeConnectorsPage(w, r.URL.Query(), c, views)
	}
	if views == nil {
		views = []connectorView{}
	}
	NoStore(w.Header())
	writeJSON(w, http.StatusOK, map[string]any{"connectors": views})
	return nil
}

// connectorViews lists the caller's connectors with their statuses.
func (h *Handler) connectorViews(r *http.Request, c grants.Caller) []connectorView {
	statuses := h.o.Mux.Statuses(r.Context(), c)
	view := h.o.Policy.For(c)
	out := make([]connectorView, len(statuses))
	for i, st := range statuses {
		out[i].ConnectorStatus = st
		m, consent, ok := h.oauth(st.ID)
		if !ok || st.Status == mcpmux.StatusNoAccess {
			continue
		}
		conn := m.Connection(r.Context(), st.ID, c.ID)
		out[i].Consent, out[i].State = string(consent), conn.State
		if conn.State == connectors.StateDisconnected {
			out[i].DisconnectReason = conn.Reason
		}
		out[i].CanConnect = mayConnect(view, st.ID, consent)
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

// writeConnectorsPage writes the Connectors page, with a banner saying how
// the last action went.
func (h *Handler) writeConnectorsPage(w http.ResponseWriter, q url.Values, c grants.Caller, views []connectorView) error {
	page := ConnectorsPage{Back: h.pageURL()}
	// A connect link names the user it was made for: opened by anyone
	// else, it connects nothing and says so, so that a link an agent was
	// handed cannot lure another user into consenting.
	foreign := q.Has("for") && !hmac.Equal([]byte(q.Get("for")), []byte(h.o.ConnectTag(c.ID)))
	for _, v := range views {
		page.Connectors = append(page.Connectors, Connector{
			ID: v.ID, Status: v.Status, Reason: v.Reason, State: string(v.State),
			CanConnect: v.CanConnect && !foreign, Focus: v.ID == q.Get("connect") && !foreign,
		})
	}
	status := http.StatusOK
	if foreign {
		status = http.StatusForbidden
	}
	page.Banner = banner(q, foreign)
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
