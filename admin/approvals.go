package admin

import (
	"errors"
	"net/http"

	"github.com/mcpgate/caddy-mcpgate/approvals"
)

// adminApprover is who the admin API approves and denies as: the admin
// endpoint names no one, and reaching it is the authority.
const adminApprover = "admin"

// listApprovals answers GET /mcpgate/approvals: the pending requests,
// then the recent ones, newest first. Without ?detail=1 they carry no
// argument values, only their SHA-256: a list is what lands in terminals,
// scripts and tickets, and an argument may hold anything a caller sent.
// With it, an admin about to decide sees what the call would do, as an
// approver on the page does; the admin endpoint may approve anyway, so
// showing it more is no widening of its power.
func (api *API) listApprovals(w http.ResponseWriter, r *http.Request) error {
	s, err := api.approvals()
	if err != nil {
		return err
	}
	detail := r.URL.Query().Get("detail")
	if detail != "" && detail != "1" {
		return errorf(http.StatusBadRequest, "detail=%q: say detail=1 to include the arguments", detail)
	}
	list, err := s.List(r.Context(), detail == "1")
	if err != nil {
		return err
	}
	return write(w, http.StatusOK, map[string]any{"approvals": list})
}

// approve answers POST /mcpgate/approvals/{id}/approve.
func (api *API) approve(w http.ResponseWriter, r *http.Request) error {
	return api.decide(w, r, true)
}

// deny answers POST /mcpgate/approvals/{id}/deny.
func (api *API) deny(w http.ResponseWriter, r *http.Request) error {
	return api.decide(w, r, false)
}

// decide approves or denies request {id} as the admin.
func (api *API) decide(w http.ResponseWriter, r *http.Request, approve bool) error {
	s, err := api.approvals()
	if err != nil {
		return err
	}
	req, err := s.Decide(r.Context(), approvals.Decision{ID: r.PathValue("id"), Approve: approve, By: adminApprover, Trusted: true})
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return errorf(http.StatusNotFound, "no approval request %q", r.PathValue("id"))
	case errors.Is(err, approvals.ErrNotPending):
		return errorf(http.StatusConflict, "approval request %s is %s, no longer pending", req.ID, req.State)
	case err != nil:
		return err
	}
	return write(w, http.StatusOK, map[string]any{"approval": req})
}

// approvals returns the approvals service, or 503 before the store opens.
func (api *API) approvals() (*approvals.Service, error) {
	var s *approvals.Service
	if api.Approvals != nil {
		s = api.Approvals()
	}
	if s == nil {
		return nil, errorf(http.StatusServiceUnavailable, "approvals are not available yet: the store is not open")
	}
	return s, nil
}
