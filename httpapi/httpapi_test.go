package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/connectors"
)

func TestTarget(t *testing.T) {
	base := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	for _, tc := range []struct {
		base, request, want, err string
	}{
		{"https://api.example.com/v1", "/connectors/notes/api/items?x=1", "https://api.example.com/v1/items?x=1", ""},
		{"https://api.example.com/v1/", "/connectors/notes/api/items", "https://api.example.com/v1/items", ""},
		{"https://api.example.com", "/connectors/notes/api", "https://api.example.com/", ""},
		{"https://api.example.com/v1", "/connectors/notes/api/a%2Fb", "https://api.example.com/v1/a%2Fb", ""},
		{"https://api.example.com/v1", "/connectors/notes/api/../admin", "", ". or .. segment"},
		{"https://api.example.com/v1", "/connectors/notes/api/%2e%2e/admin", "", ". or .. segment"},
		{"https://api.example.com/v1", "/connectors/notes/apix", "", "must start with /connectors/notes/api/"},
		{"https://api.example.com/v1", "/connectors/other/api/x", "", "must start with /connectors/notes/api/"},
	} {
		u, err := url.Parse(tc.request)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Target(base(tc.base), "notes", u)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want one saying %q", tc.request, err, tc.err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("%s: %v %v, want %s", tc.request, got, err, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	api, _ := url.Parse("https://api.example.com")
	withAPI := &connectors.Connector{ID: "notes", API: api}
	mcpOnly := &connectors.Connector{ID: "mcp"}
	disabledAPI := &connectors.Connector{ID: "off", API: api, Disabled: true}
	for _, tc := range []struct {
		name            string
		c               *connectors.Connector
		whole, writable bool
		method          string
		want            Access
	}{
		{"no connector", nil, true, true, http.MethodGet, Hidden},
		{"no API", mcpOnly, true, true, http.MethodGet, Hidden},
		{"no whole grant", withAPI, false, false, http.MethodGet, Hidden},
		{"read-only GET", withAPI, true, false, http.MethodGet, Allowed},
		{"read-only HEAD", withAPI, true, false, http.MethodHead, Allowed},
		{"read-only OPTIONS", withAPI, true, false, http.MethodOptions, Allowed},
		{"read-only POST", withAPI, true, false, http.MethodPost, ReadOnly},
		{"read-only DELETE", withAPI, true, false, http.MethodDelete, ReadOnly},
		{"writable POST", withAPI, true, true, http.MethodPost, Allowed},
		{"no grant, write", withAPI, false, true, http.MethodPost, Hidden},
		{"disabled", disabledAPI, true, true, http.MethodGet, Disabled},
		{"disabled, no grant", disabledAPI, false, false, http.MethodGet, Hidden},
	} {
		if got := Decide(tc.c, tc.whole, tc.writable, tc.method); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOutbound(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://gw/connectors/notes/api/items", nil)
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Api-Key"} {
		r.Header.Set(h, "agent-"+h)
	}
	r.Header.Set("Accept", "application/json")
	target, _ := url.Parse("https://api.example.com/v1/items")
	type key struct{}
	out := Outbound(context.WithValue(r.Context(), key{}, 1), r, target, http.Header{"X-Api-Key": {"connector"}})
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Api-Key"} {
		if v := out.Header.Get(h); v != "" {
			t.Errorf("%s reaches the API: %q", h, v)
		}
	}
	if out.Header.Get("Accept") != "application/json" || out.URL.Path != "/v1/items" || out.Context().Value(key{}) != 1 {
		t.Errorf("outbound request: %v %v", out.Header, out.URL)
	}
	if r.Header.Get("Authorization") == "" {
		t.Error("the caller's request was changed")
	}
}

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/connectors/rest/api": "rest", "/connectors/rest/api/": "rest", "/connectors/rest/api/x/y": "rest",
		"/connectors/rest/apix": "", "/connectors/rest/mcp": "", "/connectors/rest": "", "/connectors/api": "",
		"/mcp": "", "/connect/callback": "", "/other/rest/api": "",
	} {
		id, ok := Route(path)
		if ok != (want != "") || (ok && id != want) {
			t.Errorf("Route(%q) = %q, %v; want %q", path, id, ok, want)
		}
	}
}
