package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/approvals"
	"github.com/mcpgate/caddy-mcpgate/store"
)

// serveAdmin serves one request with the admin routes over api, and
// returns the status and body (an *Error's message for a failure).
func serveAdmin(api *API, method, target string) (int, string) {
	mux := http.NewServeMux()
	for _, rt := range Routes {
		mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.Serve(api, w, r); err != nil {
				status := http.StatusInternalServerError
				if e, ok := errors.AsType[*Error](err); ok {
					status = e.Status
				}
				http.Error(w, err.Error(), status)
			}
		})
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Body.String()
}

// TestAdminApprovals: the list holds no argument values unless
// ?detail=1; the admin approves as "admin", even a call of a caller
// named "admin" (the admin API is trusted, and is nobody's call); a
// decided or unknown request is 409 or 404; no service is 503.
func TestAdminApprovals(t *testing.T) {
	if code, _ := serveAdmin(&API{}, "GET", "/mcpgate/approvals"); code != http.StatusServiceUnavailable {
		t.Errorf("without the store: %d", code)
	}
	ring, _ := store.NewRing([][]byte{bytes.Repeat([]byte{2}, 32)})
	svc, err := approvals.New(approvals.Options{Store: store.Seal(store.NewMemory(), ring)})
	if err != nil {
		t.Fatal(err)
	}
	api := &API{Approvals: func() *approvals.Service { return svc }}
	_, r, err := svc.Check(context.Background(), approvals.Binding{Caller: "admin", Connector: "bank", Tool: "pay"}, json.RawMessage(`{"iban":"canary-iban"}`))
	if err != nil {
		t.Fatal(err)
	}
	code, body := serveAdmin(api, "GET", "/mcpgate/approvals")
	if code != http.StatusOK || strings.Contains(body, "canary-iban") || !strings.Contains(body, r.ID) || !strings.Contains(body, `"state": "pending"`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := serveAdmin(api, "GET", "/mcpgate/approvals?detail=1"); code != http.StatusOK || !strings.Contains(body, "canary-iban") {
		t.Fatalf("list with detail: %d %s", code, body)
	}
	if code, _ := serveAdmin(api, "GET", "/mcpgate/approvals?detail=yes"); code != http.StatusBadRequest {
		t.Errorf("detail=yes: %d", code)
	}
	code, body = serveAdmin(api, "POST", "/mcpgate/approvals/"+r.ID+"/approve")
	if code != http.StatusOK || !strings.Contains(body, `"decided_by": "admin"`) || strings.Contains(body, "canary-iban") {
		t.Fatalf("approve: %d %s", code, body)
	}
	if code, _ := serveAdmin(api, "POST", "/mcpgate/approvals/"+r.ID+"/deny"); code != http.StatusConflict {
		t.Errorf("deny after approve: %d", code)
	}
	if code, _ := serveAdmin(api, "POST", "/mcpgate/approvals/nope/approve"); code != http.StatusNotFound {
		t.Errorf("unknown id: %d", code)
	}
	if code, _ := serveAdmin(api, "GET", "/mcpgate/approvals/"+r.ID+"/approve"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET approve: %d", code)
	}
}
