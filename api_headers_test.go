package mcpgate_test

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/inert"
)

// hostileHeaders are response headers by which an API could act on the
// gateway's origin, or on a server in front of it, rather than describe
// its content; and one plain custom header that no list names.
var hostileHeaders = http.Header{
	"Content-Security-Policy":             {"default-src *"},
	"Content-Security-Policy-Report-Only": {"default-src *; report-uri https://evil.example/csp"},
	"Refresh":                             {"0; url=https://evil.example/"},
	"Strict-Transport-Security":           {"max-age=63072000; includeSubDomains; preload"},
	"Set-Cookie":                          {"session=planted; Path=/; HttpOnly"},
	"Set-Cookie2":                         {"old=planted"},
	"Access-Control-Allow-Origin":         {"*"},
	"Access-Control-Allow-Credentials":    {"true"},
	"Link":                                {"<https://evil.example/x.js>; rel=preload; as=script"},
	"Clear-Site-Data":                     {`"*"`},
	"Service-Worker-Allowed":              {"/"},
	"Origin-Agent-Cluster":                {"?0"},
	"Alt-Svc":                             {`h3=":443"; ma=86400`},
	"Report-To":                           {`{"group":"g","max_age":1,"endpoints":[{"url":"https://evil.example/r"}]}`},
	"Nel":                                 {`{"report_to":"g","max_age":1}`},
	"Reporting-Endpoints":                 {`g="https://evil.example/r"`},
	"Permissions-Policy":                  {"camera=*, geolocation=*"},
	"Cross-Origin-Opener-Policy":          {"unsafe-none"},
	"Cross-Origin-Embedder-Policy":        {"unsafe-none"},
	"Cross-Origin-Resource-Policy":        {"cross-origin"},
	"X-Frame-Options":                     {"ALLOWALL"},
	"X-Content-Type-Options":              {"sniff"},
	"X-Xss-Protection":                    {"1"},
	"Www-Authenticate":                    {`Basic realm="mcpgate"`},
	"Proxy-Authenticate":                  {`Basic realm="proxy"`},
	"Content-Location":                    {"https://evil.example/"},
	"Timing-Allow-Origin":                 {"*"},
	"Supports-Loading-Mode":               {"credentialed-prerender"},
	"Speculation-Rules":                   {`"/rules.json"`},
	"Set-Login":                           {"logged-in"},
	"X-Accel-Redirect":                    {"/internal/secrets"},
	"X-Sendfile":                          {"/etc/passwd"},
	"Server":                              {"evil"},
	"X-Api-Answer":                        {"unlisted"},
}

// listedHeaders are headers of the allow-list, which reach the agent as
// the API sent them.
var listedHeaders = http.Header{
	"X-Request-Id":          {"req-42"},
	"X-Ratelimit-Remaining": {"4999"},
	"Ratelimit-Policy":      {`"default";q=100;w=60`},
	"Etag":                  {`"v1"`},
	"Last-Modified":         {"Wed, 21 Oct 2015 07:28:00 GMT"},
	"Content-Language":      {"en"},
}

// hostileAPI is an HTTP API that sends hostileHeaders and listedHeaders
// with every answer.
func hostileAPI(w http.ResponseWriter, r *http.Request) {
	send := func(h http.Header) {
		for name, values := range h {
			w.Header()[name] = values
		}
	}
	if r.URL.Path == "/v1/early-hints" {
		// 103 Early Hints, which a browser acts on before the response.
		w.Header().Set("Link", "</evil.js>; rel=preload; as=script")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
	}
	if r.URL.Path == "/v1/upgrade" {
		upgrade(w, r)
		return
	}
	send(hostileHeaders)
	send(listedHeaders)
	switch r.URL.Path {
	case "/v1/page.html", "/v1/early-hints":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><script>fetch("/mcp",{method:"POST"})</script></html>`)
	case "/v1/drawing.svg":
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Content-Disposition", `inline; filename="drawing.svg"`)
		fmt.Fprint(w, `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	case "/v1/data.json":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60, s-maxage=600")
		fmt.Fprint(w, `{"ok":true}`)
	case "/v1/missing", "/v1/broken":
		w.Header().Set("Content-Type", "text/html")
		status := map[string]int{"/v1/missing": http.StatusNotFound, "/v1/broken": http.StatusInternalServerError}[r.URL.Path]
		w.WriteHeader(status)
		fmt.Fprint(w, `<script>alert(1)</script>`)
	case "/v1/refuse":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"bad key"}`)
	case "/v1/redirect", "/v1/deep/er/redirect":
		w.Header().Set("Location", r.URL.Query().Get("to"))
		w.WriteHeader(http.StatusFound)
	case "/v1/created":
		w.Header().Set("Location", "http://"+r.Host+"/v1/issues/7")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":7}`)
	case "/v1/trailers":
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Trailer", "X-Correlation-Id, Set-Cookie")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "streamed")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Correlation-Id", "trailer-id")
		w.Header().Set("Set-Cookie", "trailer=planted")
		w.Header().Set(http.TrailerPrefix+"Clear-Site-Data", `"*"`)
	case "/v1/slow":
		time.Sleep(2 * time.Second)
	default:
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "ok")
	}
}

// upgrade switches to a protocol that echoes what it reads, as a
// WebSocket server would after its handshake.
func upgrade(w http.ResponseWriter, r *http.Request) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSet-Cookie: ws=planted\r\n\r\n")
	_ = rw.Flush()
	line, _ := rw.ReadString('\n')
	fmt.Fprint(rw, "echo: "+line)
	_ = rw.Flush()
}

// startHostileGateway runs Caddy with connectors in front of hostileAPI:
// hostile (with a credential), slow (timeout 1s) and down (an API that is
// not there); alice has all of them, bob a read-only grant of hostile.
// /p/ is the gateway under a prefix that the site strips.
func startHostileGateway(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(hostileAPI))
	t.Cleanup(api.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	t.Setenv("MCPGATE_TEST_KEYED_KEY", keyedKey)
	startAPICaddy(t, fmt.Sprintf(`{
	%[1]s
	mcpgate {
		connector hostile {
			api %[2]s/v1
			auth header X-Api-Key {env.MCPGATE_TEST_KEYED_KEY}
		}
		connector slow {
			api %[2]s/v1
			timeout 1s
		}
		connector down {
			api %[3]s/v1
		}
		grant {
			src user:alice
			connectors hostile slow down
		}
		grant {
			src user:bob
			connectors hostile
			operations read
		}
	}
}
%[4]s {
	handle_path /anon/* {
		mcpgate
	}
	handle_path /p/* {
		basic_auth {
%[5]s		}
		mcpgate
	}
	handle {
		basic_auth {
%[5]s		}
		mcpgate
	}
}
`, apiGlobals, api.URL, down.URL, apiSite, basicAuthUsers(t, apiPasswords)))
}

// markHeaders are what inert.Mark sets on every API response.
var markHeaders = http.Header{
	"Content-Security-Policy":      {inert.Policy},
	"X-Content-Type-Options":       {"nosniff"},
	"Cross-Origin-Resource-Policy": {"same-origin"},
}

// checkHeaders checks that h holds exactly want (Date and Content-Length
// aside, which net/http sets or not by itself).
func checkHeaders(t *testing.T, what string, h, want http.Header) {
	t.Helper()
	got := h.Clone()
	got.Del("Date")
	got.Del("Content-Length")
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %s: %q reached the agent", what, name, got[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if !slices.Equal(got[name], want[name]) {
			t.Errorf("%s: %s is %q, want %q", what, name, got[name], want[name])
		}
	}
}

// with returns the union of headers, the later ones winning.
func with(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		maps.Copy(out, h)
	}
	return out
}

// getWithHints gets path from the gateway as alice, and returns the
// headers of the informational (1xx) answers that came before the final
// one, and that answer, its body closed.
func getWithHints(t *testing.T, path string) ([]textproto.MIMEHeader, *http.Response) {
	t.Helper()
	var hints []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
		hints = append(hints, h)
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, apiSite+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", apiPasswords["alice"])
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return hints, resp
}

// TestAPIResponseInert checks that nothing an API answers can act on the
// gateway's origin: a hostile API's pages, errors, redirects, early hints
// and trailers reach the agent with exactly the allowed headers and the
// sandboxing policy, and so do the answers the gateway and the proxy make
// on the API route themselves.
func TestAPIResponseInert(t *testing.T) {
	startHostileGateway(t)
	proxied := with(markHeaders, listedHeaders, http.Header{"Via": {"1.1 Caddy"}, "Cache-Control": {"private"}})

	t.Run("API answers", func(t *testing.T) {
		html := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Disposition": {"attachment"}}
		tests := []struct {
			path   string
			status int
			want   http.Header
		}{
			{"/connectors/hostile/api/page.html", 200, with(proxied, html)},
			{"/connectors/hostile/api/drawing.svg", 200, with(proxied, http.Header{"Content-Type": {"image/svg+xml"}, "Content-Disposition": {`attachment; filename=drawing.svg`}})},
			{"/connectors/hostile/api/data.json", 200, with(proxied, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"private, max-age=60"}})},
			{"/connectors/hostile/api/missing", 404, with(proxied, html, http.Header{"Content-Type": {"text/html"}})},
			{"/connectors/hostile/api/broken", 500, with(proxied, html, http.Header{"Content-Type": {"text/html"}})},
			{"/connectors/hostile/api/refuse", 401, with(proxied, http.Header{"Content-Type": {"application/json"}})},
		}
		for _, tt := range tests {
			resp, body := apiDo(t, http.MethodGet, tt.path, "alice", nil, nil)
			if resp.StatusCode != tt.status || len(body) == 0 {
				t.Errorf("%s: %d %q, want %d with the API's body", tt.path, resp.StatusCode, body, tt.status)
			}
			checkHeaders(t, tt.path, resp.Header, tt.want)
		}
	})

	t.Run("the gateway's answers", func(t *testing.T) {
		tests := []struct {
			name, method, path, user string
			status                   int
		}{
			{"no such connector", "GET", "/connectors/nosuch/api/x", "alice", 404},
			{"no grant", "GET", "/connectors/hostile/api/x", "dave", 404},
			{"read-only grant", "DELETE", "/connectors/hostile/api/x", "bob", 403},
			{"dot segment", "GET", "/connectors/hostile/api/%2e%2e/x", "alice", 400},
			{"no identity", "GET", "/anon/connectors/hostile/api/x", "", 401},
			{"API down", "GET", "/connectors/down/api/x", "alice", 502},
			{"API timeout", "GET", "/connectors/slow/api/slow", "alice", 504},
		}
		for _, tt := range tests {
			resp, body := apiDo(t, tt.method, tt.path, tt.user, nil, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("%s: %d %s, want %d", tt.name, resp.StatusCode, body, tt.status)
			}
			want := with(markHeaders, http.Header{"Server": {"Caddy"}})
			if len(body) > 0 {
				want["Content-Type"] = []string{"application/json"}
			}
			checkHeaders(t, tt.name, resp.Header, want)
		}
	})

	t.Run("early hints", func(t *testing.T) {
		hints, resp := getWithHints(t, "/connectors/hostile/api/early-hints")
		if len(hints) != 1 {
			t.Fatalf("%d early hints reached the agent, want the API's one", len(hints))
		}
		checkHeaders(t, "103 Early Hints", http.Header(hints[0]), with(markHeaders, http.Header{"Server": {"Caddy"}}))
		checkHeaders(t, "the page after the hints", resp.Header, with(proxied, http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Disposition": {"attachment"}}))
	})

	t.Run("trailers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, apiSite+"/connectors/hostile/api/trailers", nil)
		req.SetBasicAuth("alice", apiPasswords["alice"])
		resp, err := apiClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "streamed" {
			t.Fatalf("body %q: %v", body, err)
		}
		if want := (http.Header{"X-Correlation-Id": {"trailer-id"}}); !maps.EqualFunc(resp.Trailer, want, slices.Equal) {
			t.Errorf("trailers %q, want %q", resp.Trailer, want)
		}
	})

	t.Run("protocol switch", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(apiSite, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req, _ := http.NewRequest(http.MethodGet, apiSite+"/connectors/hostile/api/upgrade", nil)
		req.SetBasicAuth("alice", apiPasswords["alice"])
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "13")
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		checkHeaders(t, "101", resp.Header, with(markHeaders, http.Header{"Server": {"Caddy"},
			"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Accept": {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}))
		fmt.Fprint(conn, "hello\n")
		if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
			t.Errorf("through the switched protocol: %q, %v", line, err)
		}
	})
}

// TestAPILocation checks that a Location under the API's base reaches the
// agent as a reference to the same resource through the gateway, also
// under a prefix that the site strips, and that any other Location does
// not reach it at all: on the gateway's origin it would be an open
// redirect chosen by the API.
func TestAPILocation(t *testing.T) {
	startHostileGateway(t)
	tests := []struct{ from, to, want string }{
		{"/connectors/hostile/api/redirect", "/v1/users/2", "/connectors/hostile/api/users/2"},
		{"/p/connectors/hostile/api/redirect", "/v1/users/2", "/p/connectors/hostile/api/users/2"},
		{"/p/connectors/hostile/api/deep/er/redirect", "users/3?tab=x#top", "/p/connectors/hostile/api/deep/er/users/3?tab=x#top"},
		{"/p/connectors/hostile/api/deep/er/redirect", "/v1/a%2Fb/c", "/p/connectors/hostile/api/a%2Fb/c"},
		{"/connectors/hostile/api/redirect", "/v1", "/connectors/hostile/api"},
		{"/connectors/hostile/api/redirect", "/v1/", "/connectors/hostile/api/"},
		{"/connectors/hostile/api/redirect", "https://evil.example/login", ""},
		{"/connectors/hostile/api/redirect", "//evil.example/login", ""},
		{"/connectors/hostile/api/redirect", "/\\evil.example/login", ""},
		{"/connectors/hostile/api/redirect", "/v1/\\evil.example/login", "/connectors/hostile/api/%5Cevil.example/login"},
		{"/connectors/hostile/api/redirect", "/v1\\..\\admin", ""},
		{"/connectors/hostile/api/redirect", "javascript:alert(1)", ""},
		{"/connectors/hostile/api/redirect", "/v2/other", ""},
		{"/connectors/hostile/api/redirect", "/v1x/other", ""},
		{"/connectors/hostile/api/redirect", "../../admin", ""},
		{"/connectors/hostile/api/redirect", "/v1/%2e%2e/admin", ""},
		{"/connectors/hostile/api/redirect", "/v1/x/%252e%252e/admin", ""},
	}
	for _, tt := range tests {
		path := tt.from + "?to=" + url.QueryEscape(tt.to)
		resp, body := apiDo(t, http.MethodGet, path, "alice", nil, nil)
		if resp.StatusCode != http.StatusFound {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			continue
		}
		loc, err := resp.Location()
		switch {
		case tt.want == "" && err != http.ErrNoLocation:
			t.Errorf("%s → %q: the agent got Location %q, want none", tt.from, tt.to, resp.Header.Get("Location"))
		case tt.want != "" && (err != nil || loc.RequestURI()+fragment(loc) != tt.want || loc.Host != resp.Request.URL.Host):
			t.Errorf("%s → %q: Location %q resolves to %v, want %s", tt.from, tt.to, resp.Header.Get("Location"), loc, tt.want)
		}
	}

	// A 201's Location, absolute to the API, names the new resource
	// through the gateway.
	resp, body := apiDo(t, http.MethodPost, "/connectors/hostile/api/created", "alice", strings.NewReader("{}"), nil)
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusCreated || err != nil || loc.String() != apiSite+"/connectors/hostile/api/issues/7" {
		t.Errorf("201: %d %s, Location %q", resp.StatusCode, body, resp.Header.Get("Location"))
	}
}

// fragment is u's fragment with its "#", if it has one.
func fragment(u *url.URL) string {
	if u.Fragment == "" {
		return ""
	}
	return "#" + u.EscapedFragment()
}
