package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/grants"
)

// Approvals is what the approval pages need of the gateway.
type Approvals struct {
	// Service keeps the requests; nil until the store opens, when every
	// approval page answers 503.
	Service func() *approvals.Service
	// Approvers may decide; nil means every caller with role admin in
	// some grant.
	Approvers *grants.Sources
	// SelfApprove lets a caller decide its own call.
	SelfApprove bool
}

// ApprovalPage is the data of the approval page.
type ApprovalPage struct {
	// Request is the request, arguments included (shown to approvers only).
	Request approvals.Request
	// Arguments are the arguments, indented for people.
	Arguments string
	// CanDecide tells whether this approver may approve or deny it now.
	CanDecide bool
	// Own tells that the request is the viewer's own call.
	Own bool
	// Banner, if set, reports how the last action went.
	Banner *Banner
}

// PendingApproval is one waiting request on the Connectors page.
type PendingApproval struct {
	ID, Caller, Connector, Tool string
	Expires                     time.Time
}

// RenderApproval writes the approval page.
func RenderApproval(w io.Writer, p ApprovalPage) error {
	return pages.ExecuteTemplate(w, "approval.html", p)
}

// mayApprove reports whether c is an approver.
func (h *Handler) mayApprove(c grants.Caller) bool {
	if h.o.Approvals.Approvers != nil {
		return h.o.Approvals.Approvers.Match(c)
	}
	return h.o.Policy.For(c).IsAdmin()
}

// approvalService returns the approvals service, or the failure that
// stands for it: 404 to a caller who is no approver, so that the page
// says nothing of a request to anyone else, and 503 before the store opens.
func (h *Handler) approvalService(c grants.Caller) (*approvals.Service, error) {
	if !h.mayApprove(c) {
		return nil, notFound()
	}
	var s *approvals.Service
	if h.o.Approvals.Service != nil {
		s = h.o.Approvals.Service()
	}
	if s == nil {
		return nil, fail(http.StatusServiceUnavailable, "approvals are not available yet: the store is not open")
	}
	return s, nil
}

// serveApproval answers GET /approvals/{id}: the request, its arguments
// and the buttons, to an approver; 404 to anyone else and for an id that
// names nothing, alike.
func (h *Handler) serveApproval(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
	s, err := h.approvalService(c)
	if err != nil {
		return err
	}
	req, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return h.approvalFailure(err)
	}
	page := h.approvalPage(req, c)
	switch r.URL.Query().Get("done") {
	case "approved":
		page.Banner = &Banner{Class: "ok", Text: "Approved. The caller's retry of this very call goes through once."}
	case "denied":
		page.Banner = &Banner{Class: "ok", Text: "Denied. The caller's retry is told so."}
	}
	return writePage(w, http.StatusOK, func(out io.Writer) error { return RenderApproval(out, page) })
}

// approvalPage is the page of req as approver c sees it.
func (h *Handler) approvalPage(req approvals.Request, c grants.Caller) ApprovalPage {
	own := req.Caller == c.ID
	return ApprovalPage{Request: req, Arguments: prettyJSON(req.Arguments), Own: own,
		CanDecide: req.State == approvals.StatePending && (!own || h.o.Approvals.SelfApprove)}
}

// prettyJSON indents raw for people, with its characters as they are
// (no \u003c for "<"): the template escapes them for HTML, which is where
// escaping belongs. Numbers stay as written.
func prettyJSON(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return ""
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if enc.Encode(v) != nil {
		return ""
	}
	return out.String()
}

// serveDecide answers POST /approvals/{id}/approve and …/deny, from the
// gateway's own page or a client that is not a browser, by an approver.
func (h *Handler) serveDecide(approve bool) endpoint {
	return func(w http.ResponseWriter, r *http.Request, c grants.Caller) error {
		// The same cross-origin protection as connect and disconnect: a
		// page elsewhere cannot make an approver's browser approve.
		if h.o.CSRF.Check(r) != nil {
			return fail(http.StatusForbidden, "cross-site request refused: approve and deny only from the gateway's own pages")
		}
		s, err := h.approvalService(c)
		if err != nil {
			return err
		}
		in, err := readAction(r)
		if err != nil {
			return fail(http.StatusBadRequest, err.Error())
		}
		req, err := s.Decide(r.Context(), approvals.Decision{ID: r.PathValue("id"), Approve: approve, By: c.ID})
		if err != nil {
			return h.approvalFailure(err)
		}
		NoStore(w.Header())
		if in.form {
			http.Redirect(w, r, "/approvals/"+req.ID+"?done="+string(req.State), http.StatusSeeOther)
			return nil
		}
		writeJSON(w, http.StatusOK, map[string]any{"approval": req})
		return nil
	}
}

// approvalFailure is the answer to a failed read or decision.
func (h *Handler) approvalFailure(err error) error {
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return notFound()
	case errors.Is(err, approvals.ErrSelfApproval):
		return fail(http.StatusForbidden, "you may not approve or deny your own call: another approver must")
	case errors.Is(err, approvals.ErrNotPending):
		return fail(http.StatusConflict, "this approval request is no longer pending: it was decided already, or it expired")
	}
	h.o.Logger.Error("approval request", zap.Error(err))
	return fail(http.StatusInternalServerError, "the approval request could not be read or changed")
}

// pendingApprovals lists the requests waiting, for an approver's
// Connectors page; nothing for anyone else, or on any failure.
func (h *Handler) pendingApprovals(r *http.Request, c grants.Caller) []PendingApproval {
	if !h.mayApprove(c) || h.o.Approvals.Service == nil {
		return nil
	}
	s := h.o.Approvals.Service()
	if s == nil {
		return nil
	}
	list, err := s.List(r.Context(), false)
	if err != nil {
		h.o.Logger.Error("listing approval requests", zap.Error(err))
		return nil
	}
	var out []PendingApproval
	for _, req := range list {
		if req.State == approvals.StatePending {
			out = append(out, PendingApproval{ID: req.ID, Caller: req.Caller, Connector: req.Connector, Tool: req.Tool, Expires: req.Expires})
		}
	}
	return out
}
