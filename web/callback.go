package web

import (
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// serveCallback answers GET /connect/callback, where every consent flow
// returns: to the flow's redirect_url, or to a page that says how it went.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	m := h.o.Manager
	if m == nil {
		return writeResult(w, http.StatusServiceUnavailable, Result{Title: "Connecting failed", Detail: "No connector here uses OAuth."})
	}
	out, err := m.Callback(r.Context(), r.URL.Query(), c.ID)
	if err != nil {
		return h.callbackFailure(w, r, c, out, err)
	}
	if out.RedirectURL != "" {
		NoStore(w.Header())
		http.Redirect(w, r, withQuery(out.RedirectURL, url.Values{"connected": {out.Connector}}), http.StatusSeeOther)
		return nil
	}
	return writeResult(w, http.StatusOK, Result{OK: true, Title: "Connected " + out.Connector,
		Detail: "Agents can now use " + out.Connector + " through the gateway. You can close this page."})
}

// callbackFailure tells the browser that a consent failed, with the
// OAuth error code and a description safe to show (RFC 6749 §4.1.2.1).
func (h *Handler) callbackFailure(w http.ResponseWriter, r *http.Request, c grants.Caller, out oauthflow.Outcome, err error) error {
	var ce *oauthflow.CallbackError
	if !errors.As(err, &ce) {
		ce = &oauthflow.CallbackError{Code: "server_error", Description: "the consent could not be completed", Status: http.StatusInternalServerError}
	}
	h.o.Logger.Warn("consent failed", zap.String("connector", out.Connector), zap.String("user", c.ID),
		zap.String("error", ce.Code), zap.String("description", ce.Description))
	if out.RedirectURL != "" {
		NoStore(w.Header())
		http.Redirect(w, r, withQuery(out.RedirectURL, url.Values{"error": {ce.Code}, "error_description": {ce.Description}}), http.StatusSeeOther)
		return nil
	}
	status := ce.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	return writeResult(w, status, Result{Title: "Connecting failed", Detail: ce.Description + " (" + ce.Code + ")"})
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
func (h *Handler) serveClientMetadata(w http.ResponseWriter, _ *http.Request, _ grants.Caller) error {
	if h.o.Manager == nil {
		return notFound()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(h.o.Manager.ClientMetadata())
	return nil
}
