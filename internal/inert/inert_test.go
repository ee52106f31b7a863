package inert

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"content-type", true},
		{"X-RateLimit-Remaining", true},
		{"x-ratelimit-reset", true},
		{"RateLimit-Limit", true},
		{"RateLimit", true},
		{"X-Request-Id", true},
		{"Location", true},
		{"Set-Cookie", false},
		{"Link", false},
		{"WWW-Authenticate", false},
		{"Content-Security-Policy", false},
		{"X-Content-Type-Options", false},
		{"Access-Control-Allow-Origin", false},
		{"X-Accel-Redirect", false},
		{"X-Ratelimit", false}, // the family needs its dash
		{"Content-Location", false},
	}
	for _, tt := range tests {
		if got := Allowed(tt.name); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAttachActive(t *testing.T) {
	tests := []struct{ contentType, disposition, want string }{
		{"text/html; charset=utf-8", "", "attachment"},
		{"TEXT/HTML", "inline", "attachment"},
		{"application/xhtml+xml", "", "attachment"},
		{"image/svg+xml", `inline; filename="a.svg"`, "attachment; filename=a.svg"},
		{"application/atom+xml", "", "attachment"},
		{"text/xml", "", "attachment"},
		{"", "", "attachment"},
		{"not a type", "", "attachment"},
		{"text/html", "attachment; filename=page.html", "attachment; filename=page.html"},
		{"text/html", "inline; filename*=bad''%", "attachment"},
		{"application/json", "", ""},
		{"application/json", "inline", "inline"},
		{"text/plain", "", ""},
		{"image/png", "", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.contentType != "" {
			h.Set("Content-Type", tt.contentType)
		}
		if tt.disposition != "" {
			h.Set("Content-Disposition", tt.disposition)
		}
		attachActive(h)
		if got := h.Get("Content-Disposition"); got != tt.want {
			t.Errorf("%q with %q: Content-Disposition %q, want %q", tt.contentType, tt.disposition, got, tt.want)
		}
	}
}

func TestPrivateCache(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "private"},
		{[]string{"public, max-age=60"}, "private, max-age=60"},
		{[]string{"max-age=60, s-maxage=600", "PUBLIC"}, "private, max-age=60"},
		{[]string{`private="Set-Cookie", no-cache`}, "private, no-cache"},
		{[]string{"no-store"}, "no-store"},
		{[]string{"public, no-store, proxy-revalidate"}, "no-store"},
		{[]string{" , ,"}, "private"},
	}
	for _, tt := range tests {
		h := http.Header{"Cache-Control": tt.in}
		privateCache(h)
		if got := h.Values("Cache-Control"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%q: Cache-Control %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRelativeRef(t *testing.T) {
	tests := []struct{ from, to, want string }{
		{"/connectors/a/api/x", "/connectors/a/api/y", "y"},
		{"/connectors/a/api/x", "/connectors/a/api/x", "x"},
		{"/connectors/a/api/x/", "/connectors/a/api/x/", "./"},
		{"/connectors/a/api/x/y/z", "/connectors/a/api/q", "../../q"},
		{"/connectors/a/api", "/connectors/a/api/q", "api/q"},
		{"/connectors/a/api/x", "/connectors/a/api", "../api"},
		{"/connectors/a/api/x", "/connectors/a/api/", "./"},
		{"/connectors/a/api/x", "/connectors/a/api/b:c", "./b:c"},
		{"/connectors/a/api/x", "/connectors/a/api//evil.example/x", ".//evil.example/x"},
		{"/connectors/a/api/x/y", "/connectors/a/api/x//evil.example", ".//evil.example"},
	}
	for _, tt := range tests {
		got := relativeRef(tt.from, tt.to)
		if got != tt.want {
			t.Errorf("relativeRef(%q, %q) = %q, want %q", tt.from, tt.to, got, tt.want)
		}
		// Whatever prefix the site strips, the reference resolves to the
		// target under it.
		for _, prefix := range []string{"", "/p", "/a/b"} {
			base, _ := url.Parse("https://gw.example" + prefix + tt.from)
			ref, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if resolved := base.ResolveReference(ref); resolved.Host != "gw.example" || resolved.EscapedPath() != prefix+tt.to {
				t.Errorf("%q against %s resolves to %s, want %s", got, base, resolved, prefix+tt.to)
			}
		}
	}
}

func TestLocation(t *testing.T) {
	base, _ := url.Parse("https://api.example.com/v1")
	api, _ := url.Parse("https://api.example.com/v1/repos/x?page=2")
	p := &Paths{Base: base, API: api, Prefix: "/connectors/gh/api", Gateway: "/connectors/gh/api/repos/x"}
	tests := []struct{ location, want string }{
		{"https://api.example.com/v1/repos/y", "y"},
		{"https://API.example.com:443/v1/repos/y", "y"},
		{"/v1/users?q=1#f", "../users?q=1#f"},
		{"z?", "z?"},
		{"https://api.example.com/v1", "../../api"},
		{"http://api.example.com/v1/repos/y", ""},
		{"https://api.example.com:8443/v1/repos/y", ""},
		{"https://user:pw@api.example.com/v1/repos/y", ""},
		{"https://evil.example/v1/repos/y", ""},
		{"//evil.example/", ""},
		{"/v1x", ""},
		{"/v2/y", ""},
		{"/v1/%2e%2e/admin", ""},
		{"/v1/a/%2F..%2Fb", ""},
		{"javascript:alert(1)", ""},
		{"data:text/html,<script>", ""},
		{"%zz", ""},
	}
	for _, tt := range tests {
		got, ok := p.location(tt.location)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("location(%q) = %q, %v, want %q", tt.location, got, ok, tt.want)
		}
	}
}

func TestResponse(t *testing.T) {
	body := io.NopCloser(strings.NewReader("body"))
	res := &http.Response{
		StatusCode: http.StatusOK,
		Header: http.Header{
			"Content-Type": {"application/json"}, "Set-Cookie": {"a=b"}, "Location": {"https://evil.example/"},
			"X-Ratelimit-Limit": {"10"},
		},
		Trailer: http.Header{"Set-Cookie": nil, "X-Request-Id": nil},
		Body:    body,
	}
	base, _ := url.Parse("https://api.example.com/v1")
	Response(res, &Paths{Base: base, API: base, Prefix: "/connectors/a/api", Gateway: "/connectors/a/api"})
	want := http.Header{"Content-Type": {"application/json"}, "X-Ratelimit-Limit": {"10"}, "Cache-Control": {"private"}}
	if len(res.Header) != len(want) {
		t.Errorf("header %q, want %q", res.Header, want)
	}
	for name, values := range want {
		if got := res.Header.Values(name); strings.Join(got, ",") != strings.Join(values, ",") {
			t.Errorf("%s: %q, want %q", name, got, values)
		}
	}
	if _, announced := res.Trailer["Set-Cookie"]; announced || len(res.Trailer) != 1 {
		t.Errorf("announced trailers %q", res.Trailer)
	}
	// The trailers that come with the end of the body are filtered too.
	res.Trailer["Set-Cookie"] = []string{"late=planted"}
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Trailer["Set-Cookie"]; ok {
		t.Error("a trailer that came with the body's end passed")
	}
	res.Trailer["Clear-Site-Data"] = []string{`"*"`}
	_ = res.Body.Close()
	if _, ok := res.Trailer["Clear-Site-Data"]; ok {
		t.Error("a trailer that came before Close passed")
	}

	// A 101 keeps its body, the switched connection, as it is.
	res = &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{"Upgrade": {"websocket"}, "Set-Cookie": {"a=b"}}, Body: body}
	Response(res, nil)
	if res.Body != body || len(res.Header) != 1 || res.Header.Get("Upgrade") != "websocket" {
		t.Errorf("101: body replaced or header %q", res.Header)
	}
}

func TestClimbs(t *testing.T) {
	for _, p := range []string{"/a/../b", "/./", "/%2e%2E/x", "/%252e%252e", "/a%2F..%2Fb", `/a%5C..%5Cb`, ".."} {
		if !Climbs(p) {
			t.Errorf("Climbs(%q) = false", p)
		}
	}
	for _, p := range []string{"/a/b", "/..well", "/dots.in.name", "/%2e%2e%2e", ""} {
		if Climbs(p) {
			t.Errorf("Climbs(%q) = true", p)
		}
	}
}
