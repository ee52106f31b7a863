package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/oauthflow/discovery"
)

// TestDiagnose runs the connect path against a working server and against
// each way it can fail, and checks which step fails and what fix is named.
func TestDiagnose(t *testing.T) {
	failing := func(err error) func(h *harness, _ *Options, cfgs *[]Config) {
		return func(_ *harness, _ *Options, cfgs *[]Config) {
			(*cfgs)[0].Discover = func(context.Context, string, *discovery.Challenge) (*discovery.Result, error) {
				return nil, err
			}
		}
	}
	tests := []struct {
		name   string
		tweak  func(h *harness, opts *Options, cfgs *[]Config)
		refuse bool   // the server refuses registration
		steps  int    // how many steps ran
		failed string // the step that failed, or ""
		fix    string // in its fix
	}{
		{name: "works", steps: 4},
		{name: "resource mismatch", tweak: failing(fmt.Errorf("x: %w", discovery.ErrResourceMismatch)), steps: 1, failed: StepResourceMetadata, fix: "set resource"},
		{name: "no resource metadata", tweak: failing(fmt.Errorf("x: %w", discovery.ErrNoResourceMetadata)), steps: 1, failed: StepResourceMetadata, fix: "set issuer"},
		{name: "no authorization server", tweak: failing(fmt.Errorf("x: %w", discovery.ErrNoAuthorizationServer)), steps: 2, failed: StepServerMetadata, fix: "authorization_endpoint and token_endpoint"},
		{name: "issuer mismatch", tweak: failing(fmt.Errorf("x: %w", discovery.ErrIssuerMismatch)), steps: 2, failed: StepServerMetadata, fix: "set issuer"},
		{name: "no PKCE", tweak: failing(fmt.Errorf("x: %w", discovery.ErrNoPKCE)), steps: 2, failed: StepServerMetadata, fix: "PKCE S256"},
		{name: "unreachable", tweak: failing(errors.New("dial tcp: connection refused")), steps: 1, failed: StepResourceMetadata},
		{name: "registration refused", refuse: true, steps: 3, failed: StepRegistration, fix: "set client_id and client_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.tweak)
			if tt.refuse {
				h.as.set(func(a *fakeAS) {
					a.onRegister = func(w http.ResponseWriter, _ map[string]any) bool {
						w.WriteHeader(http.StatusForbidden)
						w.Write([]byte(`{"error":"access_denied"}`))
						return true
					}
				})
			}
			steps, err := h.m.Diagnose(context.Background(), "notion")
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != tt.steps {
				t.Fatalf("steps = %+v, want %d", steps, tt.steps)
			}
			for i, s := range steps {
				last := i == len(steps)-1
				if s.OK != (!last || tt.failed == "") {
					t.Errorf("step %s ok = %v: %+v", s.Name, s.OK, steps)
				}
			}
			last := steps[len(steps)-1]
			if tt.failed == "" {
				if last.Name != StepAuthorizationURL || !strings.HasPrefix(last.Detail, h.as.Issuer+"/authorize?") || !strings.Contains(last.Detail, "code_challenge_method=S256") {
					t.Fatalf("the authorization URL step = %+v", last)
				}
			} else if last.Name != tt.failed || !strings.Contains(last.Fix, tt.fix) {
				t.Fatalf("the failing step = %+v, want %s with a fix naming %q", last, tt.failed, tt.fix)
			}
			// A diagnosis starts no consent.
			if flows, _ := h.st.List(context.Background(), prefixFlows); len(flows) != 0 {
				t.Errorf("the diagnosis left %d consent flows", len(flows))
			}
			if _, err := h.m.Diagnose(context.Background(), "nope"); !errors.Is(err, ErrUnknownConnector) {
				t.Errorf("an unknown connector: %v", err)
			}
		})
	}
}

// TestDiagnoseWithoutResourceMetadata: a server found without the
// resource's metadata is named with how it was found.
func TestDiagnoseWithoutResourceMetadata(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Options, cfgs *[]Config) {
		(*cfgs)[0].Discover = func(context.Context, string, *discovery.Challenge) (*discovery.Result, error) {
			return &discovery.Result{Server: h.as.meta, FoundBy: discovery.FoundByDefaults}, nil
		}
	})
	steps, err := h.m.Diagnose(context.Background(), "notion")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 || !steps[0].OK || !strings.Contains(steps[0].Detail, "default endpoints at the resource's origin") ||
		!strings.Contains(steps[0].Detail, h.as.Issuer) {
		t.Fatalf("steps = %+v", steps)
	}
}
