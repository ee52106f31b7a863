package web

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/strictjson"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
)

// maxFormBody caps the body of a connect or disconnect request.
const maxFormBody = 64 << 10

// serveConnect answers POST /connectors/{id}/connect: it starts a consent
// flow and answers {"auth_url": …}, or for a browser's form sends it there.
// A disabled connector starts none, since the consent would store fresh
// tokens for a connector that an admin turned off; disconnecting it stays
// allowed.
func (h *Handler) serveConnect(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	id := r.PathValue("id")
	m, in, err := h.consentRequest(r, c, id)
	if err != nil {
		return err
	}
	authURL, err := m.Start(r.Context(), id, c.ID, in.RedirectURL)
	if err != nil {
		return h.startFailure(id, c, err)
	}
	NoStore(w.Header())
	if in.form {
		http.Redirect(w, r, authURL, http.StatusSeeOther)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"auth_url": authURL})
	return nil
}

// startFailure is the answer to a consent that could not start.
func (h *Handler) startFailure(id string, c grants.Caller, err error) *Error {
	switch {
	case errors.Is(err, oauthflow.ErrBadRedirect):
		return fail(http.StatusBadRequest, "redirect_url is not allowed: it must be on the gateway's origin or an allowed_redirects origin")
	case errors.Is(err, connectors.ErrDisabled):
		// The OAuth manager refuses it, before any flow is stored.
		return fail(http.StatusForbidden, err.Error())
	case errors.Is(err, oauthflow.ErrNoConsent):
		// A client credentials connector: its token comes at its first
		// call, with no one's consent.
		return fail(http.StatusConflict, err.Error())
	case errors.Is(err, oauthflow.ErrTooManyConsents):
		// Pending consents expire within ten minutes; the gateway is busy,
		// not the connector broken.
		return &Error{Status: http.StatusServiceUnavailable, Message: err.Error(), Header: http.Header{"Retry-After": {"60"}}}
	}
	h.o.Logger.Warn("starting consent", zap.String("connector", id), zap.String("user", c.ID), zap.Error(err))
	return fail(http.StatusBadGateway, "connector "+id+": "+err.Error())
}

// serveDisconnect answers POST /connectors/{id}/disconnect: the
// credential is purged at once, then revoked at the provider.
func (h *Handler) serveDisconnect(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	id := r.PathValue("id")
	m, in, err := h.consentRequest(r, c, id)
	if err != nil {
		return err
	}
	rev, err := m.Disconnect(r.Context(), id, c.ID, "disconnected by "+c.ID)
	if err != nil {
		h.o.Logger.Error("disconnecting", zap.String("connector", id), zap.String("user", c.ID), zap.Error(err))
		return fail(http.StatusInternalServerError, "connector "+id+": disconnecting failed")
	}
	NoStore(w.Header())
	if in.form {
		http.Redirect(w, r, h.pageURL()+"?disconnected="+url.QueryEscape(id), http.StatusSeeOther)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"connector": id, "state": connectors.StateDisconnected,
		"revocation": rev,
	})
	return nil
}

// consentRequest checks a connect or disconnect request and reads its
// body: a request from the gateway's own pages or a non-browser client, by
// a caller who may consent for the connector.
func (h *Handler) consentRequest(r *http.Request, c grants.Caller, id string) (*oauthflow.Manager, action, error) {
	// Go's cross-origin protection: a browser marks cross-site requests
	// with Sec-Fetch-Site or Origin; a client that is not a browser sends
	// neither. The host may trust more origins, such as public_url's for a
	// gateway whose Host differs behind another proxy.
	if h.o.CSRF.Check(r) != nil {
		return nil, action{}, fail(http.StatusForbidden, "cross-site request refused: connect and disconnect only from the gateway's own pages")
	}
	view := h.o.Policy.For(c)
	if _, defined := h.o.Mux.Connector(id); !defined || !view.Visible(id) {
		return nil, action{}, notFound()
	}
	m, consent, ok := h.oauth(id)
	if !ok {
		return nil, action{}, fail(http.StatusBadRequest, "connector "+id+" does not use OAuth: there is nothing to connect")
	}
	if !mayConnect(view, id, consent) {
		msg := "you have no access to connector " + id
		if consent == oauthflow.Shared {
			msg = "connector " + id + " has shared consent: only an admin may connect or disconnect it"
		}
		return nil, action{}, fail(http.StatusForbidden, msg)
	}
	in, err := readAction(r)
	if err != nil {
		return nil, action{}, fail(http.StatusBadRequest, err.Error())
	}
	return m, in, nil
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
