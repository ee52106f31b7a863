package mcpgate

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// maxFormBody caps the body of a connect or disconnect request.
const maxFormBody = 64 << 10

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

// connectorViews lists the caller's connectors with their statuses.
func (h *Handler) connectorViews(r *http.Request, g *gateway, caller grants.Caller) []connectorView {
	statuses := g.mux.Statuses(r.Context(), caller)
	view := h.app.policy.For(caller)
	out := make([]connectorView, len(statuses))
	for i, st := range statuses {
		out[i].ConnectorStatus = st
		m, consent, ok := g.oauthFor(st.ID)
		if !ok || st.Status == mcpmux.StatusNoAccess {
			continue
		}
		conn := m.Connection(r.Context(), st.ID, caller.ID)
		out[i].Consent, out[i].State = string(consent), conn.State
		if conn.State == connectors.StateDisconnected {
			out[i].DisconnectReason = conn.Reason
		}
		out[i].CanConnect = mayConnect(view, st.ID, consent)
	}
	return out
}

// mayConnect reports whether a view may start or end consent for a
// connector: any user with access for per-user consent, an admin for
// shared consent.
func mayConnect(view *grants.View, id string, consent oauthflow.Consent) bool {
	return view.HasItems(id) && (consent != oauthflow.Shared || view.IsAdmin())
}

// serveConnectors answers GET /connectors: JSON, or the Connectors page
// for a browser.
func (h *Handler) serveConnectors(w http.ResponseWriter, r *http.Request, g *gateway, caller grants.Caller) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "GET /connectors lists your connectors")
		return nil
	}
	views := h.connectorViews(r, g, caller)
	if !wantsHTML(r) {
		if views == nil {
			views = []connectorView{}
		}
		noStore(w.Header())
		writeJSONBody(w, http.StatusOK, map[string]any{"connectors": views})
		return nil
	}
	q := r.URL.Query()
	page := web.ConnectorsPage{Back: h.app.pageURL()}
	// A connect link names the user it was made for: opened by anyone
	// else, it connects nothing and says so (see connectTag).
	status, foreign := http.StatusOK, q.Has("for") && !hmac.Equal([]byte(q.Get("for")), []byte(h.app.connectTag(caller.ID)))
	for _, v := range views {
		page.Connectors = append(page.Connectors, web.Connector{
			ID: v.ID, Status: v.Status, Reason: v.Reason, State: string(v.State),
			CanConnect: v.CanConnect && !foreign, Focus: v.ID == q.Get("connect") && !foreign,
		})
	}
	switch {
	case foreign:
		status = http.StatusForbidden
		page.Banner = &web.Banner{Class: "fail", Text: "This link was made for another user: it connects only the account of whoever asked for it. " +
			"Sign in as that user to connect, or open the Connectors page yourself."}
	case q.Get("error") != "":
		page.Banner = &web.Banner{Class: "fail", Text: "Connecting failed: " + q.Get("error_description") + " (" + q.Get("error") + ")"}
	case q.Get("connected") != "":
		page.Banner = &web.Banner{Class: "ok", Text: "Connected " + q.Get("connected") + "."}
	case q.Get("disconnected") != "":
		page.Banner = &web.Banner{Class: "ok", Text: "Disconnected " + q.Get("disconnected") + "."}
	}
	return writePage(w, status, func(out io.Writer) error { return web.RenderConnectors(out, page) })
}

// pageURL is the URL of the Connectors page: absolute under public_url,
// which OAuth connectors require, so that consent flows can return to it.
func (a *App) pageURL() string {
	return strings.TrimSuffix(a.PublicURL, "/") + "/connectors"
}

// serveConnect answers POST /connectors/{id}/connect: it starts a consent
// flow and answers {"auth_url": …}, or for a browser's form sends it there.
func (h *Handler) serveConnect(w http.ResponseWriter, r *http.Request, g *gateway, caller grants.Caller, id string) error {
	m, in, ok := h.consentRequest(w, r, g, caller, id)
	if !ok {
		return nil
	}
	authURL, err := m.Start(r.Context(), id, caller.ID, in.RedirectURL)
	switch {
	case errors.Is(err, oauthflow.ErrBadRedirect):
		writeError(w, http.StatusBadRequest, "redirect_url is not allowed: it must be on the gateway's origin or an allowed_redirects origin")
		return nil
	case errors.Is(err, oauthflow.ErrTooManyConsents):
		// Pending consents expire within ten minutes; the gateway is busy,
		// not the connector broken.
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return nil
	case err != nil:
		h.app.logger.Warn("starting consent", zap.String("connector", id), zap.String("user", caller.ID), zap.Error(err))
		writeError(w, http.StatusBadGateway, "connector "+id+": "+err.Error())
		return nil
	}
	noStore(w.Header())
	if in.form {
		http.Redirect(w, r, authURL, http.StatusSeeOther)
		return nil
	}
	writeJSONBody(w, http.StatusOK, map[string]string{"auth_url": authURL})
	return nil
}

// serveDisconnect answers POST /connectors/{id}/disconnect: the
// credential is purged at once, then revoked at the provider.
func (h *Handler) serveDisconnect(w http.ResponseWriter, r *http.Request, g *gateway, caller grants.Caller, id string) error {
	m, in, ok := h.consentRequest(w, r, g, caller, id)
	if !ok {
		return nil
	}
	rev, err := m.Disconnect(r.Context(), id, caller.ID, "disconnected by "+caller.ID)
	if err != nil {
		h.app.logger.Error("disconnecting", zap.String("connector", id), zap.String("user", caller.ID), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "connector "+id+": disconnecting failed")
		return nil
	}
	noStore(w.Header())
	if in.form {
		http.Redirect(w, r, h.app.pageURL()+"?disconnected="+url.QueryEscape(id), http.StatusSeeOther)
		return nil
	}
	writeJSONBody(w, http.StatusOK, map[string]any{
		"connector": id, "state": connectors.StateDisconnected,
		"revocation": revocationView(rev),
	})
	return nil
}

// consentRequest checks a connect or disconnect request and reads its
// body: a POST from the gateway's own pages or a non-browser client, by a
// caller who may consent for the connector. On false the answer is sent.
func (h *Handler) consentRequest(w http.ResponseWriter, r *http.Request, g *gateway, caller grants.Caller, id string) (*oauthflow.Manager, action, bool) {
	var in action
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return nil, in, false
	}
	// Go's cross-origin protection: a browser marks cross-site requests
	// with Sec-Fetch-Site or Origin; a client that is not a browser sends
	// neither. public_url's origin is trusted too, for a gateway whose Host
	// differs behind another proxy.
	if h.app.csrf.Check(r) != nil {
		writeError(w, http.StatusForbidden, "cross-site request refused: connect and disconnect only from the gateway's own pages")
		return nil, in, false
	}
	view := h.app.policy.For(caller)
	if _, defined := g.connector(id); !defined || !view.Visible(id) {
		_ = h.notFound(w)
		return nil, in, false
	}
	m, consent, ok := g.oauthFor(id)
	if !ok {
		writeError(w, http.StatusBadRequest, "connector "+id+" does not use OAuth: there is nothing to connect")
		return nil, in, false
	}
	if !mayConnect(view, id, consent) {
		msg := "you have no access to connector " + id
		if consent == oauthflow.Shared {
			msg = "connector " + id + " has shared consent: only an admin may connect or disconnect it"
		}
		writeError(w, http.StatusForbidden, msg)
		return nil, in, false
	}
	in, err := readAction(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, in, false
	}
	return m, in, true
}

// action is the body of a connect or disconnect request.
type action struct {
	RedirectURL string `json:"redirect_url"`
	form        bool
}

// readAction reads an optional JSON or form body.
func readAction(r *http.Request) (action, error) {
	var in action
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
	if err != nil {
		return in, errors.New("reading the request body failed")
	}
	if len(body) > maxFormBody {
		return in, errors.New("the request body is too large")
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return in, errors.New("the form body is malformed")
		}
		in.RedirectURL, in.form = form.Get("redirect_url"), true
	case len(bytes.TrimSpace(body)) == 0:
	default:
		if err := strictjson.Unmarshal(body, &in, false); err != nil {
			return in, errors.New("the body must be a JSON object such as {\"redirect_url\": \"…\"}: " + err.Error())
		}
	}
	return in, nil
}

// serveCallback answers GET /connect/callback, where every consent flow
// returns.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request, g *gateway, caller grants.Caller) error {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "the OAuth callback takes GET")
		return nil
	}
	m := g.manager
	if m == nil {
		return writeResult(w, http.StatusServiceUnavailable, web.Result{Title: "Connecting failed", Detail: "No connector here uses OAuth."})
	}
	out, err := m.Callback(r.Context(), r.URL.Query(), caller.ID)
	if err == nil {
		if out.RedirectURL != "" {
			noStore(w.Header())
			http.Redirect(w, r, withQuery(out.RedirectURL, url.Values{"connected": {out.Connector}}), http.StatusSeeOther)
			return nil
		}
		return writeResult(w, http.StatusOK, web.Result{OK: true, Title: "Connected " + out.Connector,
			Detail: "Agents can now use " + out.Connector + " through the gateway. You can close this page."})
	}
	var ce *oauthflow.CallbackError
	if !errors.As(err, &ce) {
		ce = &oauthflow.CallbackError{Code: "server_error", Description: "the consent could not be completed", Status: http.StatusInternalServerError}
	}
	h.app.logger.Warn("consent failed", zap.String("connector", out.Connector), zap.String("user", caller.ID),
		zap.String("error", ce.Code), zap.String("description", ce.Description))
	if out.RedirectURL != "" {
		noStore(w.Header())
		http.Redirect(w, r, withQuery(out.RedirectURL, url.Values{"error": {ce.Code}, "error_description": {ce.Description}}), http.StatusSeeOther)
		return nil
	}
	status := ce.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	return writeResult(w, status, web.Result{Title: "Connecting failed", Detail: ce.Description + " (" + ce.Code + ")"})
}

// withQuery adds values to a URL's query.
func withQuery(raw string, add url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, vs := range add {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// serveClientMetadata answers GET /connect/client-metadata.json, the
// client ID metadata document that authorization servers fetch. It holds
// no secret and needs no caller.
func (h *Handler) serveClientMetadata(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "GET the client metadata document")
		return nil
	}
	m, err := h.app.oauth()
	if err != nil {
		return h.notFound(w)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err = w.Write(m.ClientMetadata())
	return err
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

// noStore marks a response that must not be cached or framed.
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// writePage writes an HTML page with the headers every page carries: no
// caching, no framing, no script.
func writePage(w http.ResponseWriter, status int, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	h := w.Header()
	noStore(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// writeResult writes the page that ends a consent flow.
func writeResult(w http.ResponseWriter, status int, res web.Result) error {
	return writePage(w, status, func(out io.Writer) error { return web.RenderResult(out, res) })
}

// writeJSONBody writes v as JSON.
func writeJSONBody(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
