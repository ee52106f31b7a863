package mcpgate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mcpgate/caddy-mcpgate/internal/redact"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// The API tests' own Caddy ports, apart from the other tests'.
const (
	apiAdminPort = 2997
	apiSite      = "http://127.0.0.1:9082"
)

// apiGlobals are the global options of the API tests' Caddy: its own
// ports, on loopback, and no grace period at unload.
var apiGlobals = fmt.Sprintf(`admin localhost:%d
	http_port 9082
	https_port 9444
	default_bind 127.0.0.1
	grace_period 1ns`, apiAdminPort)

// apiPasswords are the API tests' users: alice has every connector, bob a
// read-only grant of rest, carol a grant of rest's tools only (not of the
// connector) and dave no grant.
var apiPasswords = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}

// The secrets of the API connectors, which only the API may see.
const (
	restToken = "rest-api-secret"
	keyedKey  = "keyed-api-secret"
)

// chunk is the unit of the streaming tests: 4096 periods of 0..250, so
// that byte p of any stream of chunks is p % 251 and a misplaced byte
// shows.
var chunk = func() []byte {
	b := make([]byte, 251*4096)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

// bigChunks makes a stream of more than 64 MiB.
const bigChunks = 66

// seenRequest is a request as the test API received it.
type seenRequest struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
}

// apiServer is a real HTTP API on loopback, which records what reaches it.
type apiServer struct {
	*httptest.Server
	mu       sync.Mutex
	seen     []seenRequest
	newConns atomic.Int64
	// clientGotFirst and serverGotFirst are the handshakes of the
	// streaming tests: each side waits for the other to have the first
	// chunk before it sends the rest.
	clientGotFirst, serverGotFirst chan struct{}
	streamErr                      chan error
}

// startAPIServer starts the test API. guard, if set, wraps its handler,
// as an OAuth resource server does.
func startAPIServer(t testing.TB) *apiServer {
	t.Helper()
	a := &apiServer{streamErr: make(chan error, 1)}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			a.newConns.Add(1)
		}
	}
	a.Start()
	t.Cleanup(a.Close)
	return a
}

// last returns the request the API received last.
func (a *apiServer) last() seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return seenRequest{}
	}
	return a.seen[len(a.seen)-1]
}

// requests returns what the API has received.
func (a *apiServer) requests() []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

func (a *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/stream":
		a.record(r, "")
		a.stream(w)
		return
	case "/v1/upload":
		a.record(r, "")
		a.upload(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	a.record(r, string(body))
	switch r.URL.Path {
	case "/v1/slow-headers":
		time.Sleep(2 * time.Second)
	case "/v1/slow-body":
		w.WriteHeader(http.StatusOK)
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(600 * time.Millisecond)
		}
		return
	case "/v1/refuse":
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "token refused", http.StatusUnauthorized)
		return
	}
	// Headers that act on the gateway's origin, and one that no list
	// names, which the gateway drops; and one of its allow-list.
	w.Header().Set("Set-Cookie", "api=planted; Path=/")
	w.Header().Set("Clear-Site-Data", `"cookies"`)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("X-Api-Answer", "yes")
	w.Header().Set("X-Request-Id", "api-answer")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "uri": r.RequestURI, "host": r.Host, "body": string(body),
		"authorization": r.Header.Get("Authorization"), "x_api_key": r.Header.Get("X-Api-Key"),
		"cookie": r.Header.Get("Cookie"),
	})
}

func (a *apiServer) record(r *http.Request, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: body})
}

// stream sends the first chunk, waits until the client has it, then
// sends more than 64 MiB: a gateway that held the response back whole
// would never deliver the first chunk, and the test would fail at the
// wait.
func (a *apiServer) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(chunk)
	w.(http.Flusher).Flush()
	select {
	case <-a.clientGotFirst:
	case <-time.After(10 * time.Second):
		a.streamErr <- errors.New("the client did not receive the first chunk while the API waited: the gateway held it back")
		return
	}
	for range bigChunks {
		if _, err := w.Write(chunk); err != nil {
			a.streamErr <- err
			return
		}
		w.(http.Flusher).Flush()
	}
	a.streamErr <- nil
}

// upload reads the first chunk, lets the client send the rest, and checks
// every byte as it comes.
func (a *apiServer) upload(w http.ResponseWriter, r *http.Request) {
	first := make([]byte, len(chunk))
	if _, err := io.ReadFull(r.Body, first); err != nil || !bytes.Equal(first, chunk) {
		http.Error(w, fmt.Sprintf("the first chunk: %v", err), http.StatusBadRequest)
		return
	}
	close(a.serverGotFirst)
	n, err := checkStream(r.Body, int64(len(chunk)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]int64{"bytes": n})
}

// checkStream reads r to its end, checking that byte p of the stream,
// counted from offset, is p % 251, and returns how many bytes it read,
// offset included. It holds one small buffer, never the stream.
func checkStream(r io.Reader, offset int64) (int64, error) {
	buf := make([]byte, 64<<10)
	pos := offset
	for {
		n, err := r.Read(buf)
		for got := buf[:n]; len(got) > 0; {
			at := int(pos % int64(len(chunk)))
			want := chunk[at:min(len(chunk), at+len(got))]
			if !bytes.Equal(got[:len(want)], want) {
				return pos, fmt.Errorf("the stream differs near byte %d", pos)
			}
			got, pos = got[len(want):], pos+int64(len(want))
		}
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
	}
}

// startAPICaddy runs a real Caddy with mcpgate on the API tests' ports
// and unloads it when the test ends.
func startAPICaddy(t testing.TB, config string) {
	t.Helper()
	t.Cleanup(func() { _ = stopAPICaddy() })
	tester := sitetest.NewTester(t, apiAdminPort)
	tester.InitServer(config, "caddyfile")
}

// stopAPICaddy unloads the API tests' Caddy, keeping only its admin
// endpoint, which closes what mcpgate holds open (the database).
func stopAPICaddy() error {
	return caddy.Load(fmt.Appendf(nil, `{"admin":{"listen":"localhost:%d"}}`, apiAdminPort), true)
}

// startAPIGateway starts the test API, an MCP upstream, and Caddy with
// connectors in front of them: rest (bearer, API base /v1 through a
// placeholder), keyed (a custom header, base /v1/), slow (no credential,
// timeout 1s), both (an MCP server with an API) and mcponly (no API).
func startAPIGateway(t *testing.T) *apiServer {
	api := startAPIServer(t)
	mcp := testupstream.StartT(t, testupstream.Options{Name: "both"})
	t.Setenv("MCPGATE_TEST_API", api.URL)
	t.Setenv("MCPGATE_TEST_REST_TOKEN", restToken)
	t.Setenv("MCPGATE_TEST_KEYED_KEY", keyedKey)
	startAPICaddy(t, fmt.Sprintf(`{
	%[1]s
	mcpgate {
		connector rest {
			api {env.MCPGATE_TEST_API}/v1
			auth bearer {env.MCPGATE_TEST_REST_TOKEN}
		}
		connector keyed {
			api %[2]s/v1/
			auth header X-Api-Key {env.MCPGATE_TEST_KEYED_KEY}
		}
		connector slow {
			api %[2]s/v1
			timeout 1s
		}
		connector both {
			url %[3]s
			api %[2]s/v1
		}
		connector mcponly {
			url %[3]s
		}
		grant {
			src user:alice
			connectors rest keyed slow both mcponly
		}
		grant {
			src user:bob
			connectors rest
			operations read
		}
		grant {
			src user:carol
			tools rest/* both/*
		}
	}
}
%[4]s {
	handle_path /anon/* {
		mcpgate
	}
	handle {
		basic_auth {
%[5]s		}
		mcpgate
	}
}
`, apiGlobals, api.URL, mcp.URL, apiSite, basicAuthUsers(t, apiPasswords)))
	return api
}

// apiClient is an agent's HTTP client with its own connections.
func apiClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// apiDo sends a request to the gateway as user, with the agent's own
// Authorization and a cookie, and returns the answer with its body.
func apiDo(t testing.TB, method, path, user string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, apiSite+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.SetBasicAuth(user, apiPasswords[user])
	}
	req.Header.Set("Cookie", "gateway_session=agent-cookie-canary")
	req.Header.Set("Proxy-Authorization", "Basic proxy-canary")
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// echoed is what the test API's echo answers.
type echoed struct {
	Method, URI, Host, Body, Authorization, Cookie string
	XAPIKey                                        string `json:"x_api_key"`
}

func decodeEcho(t testing.TB, resp *http.Response, body []byte) echoed {
	t.Helper()
	var e echoed
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil {
		t.Fatalf("%s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	return e
}

// TestAPIProxy checks an HTTP API connector through a real Caddy: the API
// gets the connector's credential and never the caller's, paths, escapes,
// query strings, methods and bodies arrive as sent, only a grant of the
// whole connector opens it, and the gateway's origin keeps its cookies.
func TestAPIProxy(t *testing.T) {
	api := startAPIGateway(t)
	apiHost := strings.TrimPrefix(api.URL, "http://")

	t.Run("credential custody", func(t *testing.T) {
		resp, body := apiDo(t, http.MethodGet, "/connectors/rest/api/users/42?expand=teams", "alice", nil, nil)
		e := decodeEcho(t, resp, body)
		if got := api.last().Header.Get("Authorization"); got != "Bearer "+restToken {
			t.Errorf("the API got Authorization %q, want the connector's bearer", got)
		}
		// The API echoes what it got; the caller sees the marker instead.
		if e.Authorization != "Bearer "+redact.Marker {
			t.Errorf("the echoed Authorization reached the caller as %q", e.Authorization)
		}
		if e.Cookie != "" {
			t.Errorf("the API got the caller's cookie %q", e.Cookie)
		}
		if e.Host != apiHost {
			t.Errorf("the API got Host %q, want %q", e.Host, apiHost)
		}
		resp, body = apiDo(t, http.MethodGet, "/connectors/keyed/api/users", "alice", nil, nil)
		if got := api.last(); got.Header.Get("X-Api-Key") != keyedKey || got.Header.Get("Authorization") != "" || got.URI != "/v1/users" {
			t.Errorf("keyed: the API got %+v", got)
		}
		if e := decodeEcho(t, resp, body); e.XAPIKey != redact.Marker {
			t.Errorf("keyed: the echoed key reached the caller as %q", e.XAPIKey)
		}
		// A caller cannot pick the connector's header for it.
		_, _ = apiDo(t, http.MethodGet, "/connectors/keyed/api/users", "alice", nil, http.Header{"X-Api-Key": {"agent-key-canary"}})
		if got := api.last().Header.Values("X-Api-Key"); !slices.Equal(got, []string{keyedKey}) {
			t.Errorf("keyed: the caller's X-Api-Key reached the API: %q", got)
		}
		for _, r := range api.requests() {
			for _, name := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
				if v := r.Header.Get(name); strings.Contains(v, "Basic") || strings.Contains(v, "canary") {
					t.Errorf("%s %s: the API got the caller's %s %q", r.Method, r.URI, name, v)
				}
			}
		}
	})

	t.Run("paths and queries", func(t *testing.T) {
		tests := []struct{ path, uri string }{
			{"/connectors/rest/api/users/42", "/v1/users/42"},
			{"/connectors/rest/api/", "/v1/"},
			{"/connectors/rest/api", "/v1"},
			{"/connectors/keyed/api/", "/v1/"},
			{"/connectors/rest/api/search?q=a%20b&q=c&empty=&flag", "/v1/search?q=a%20b&q=c&empty=&flag"},
			{"/connectors/rest/api/repos/group%2Fproject/files/a%20b.txt", "/v1/repos/group%2Fproject/files/a%20b.txt"},
			{"/connectors/rest/api/dots.in.name/..well", "/v1/dots.in.name/..well"},
		}
		for _, tt := range tests {
			resp, body := apiDo(t, http.MethodGet, tt.path, "alice", nil, nil)
			if e := decodeEcho(t, resp, body); e.URI != tt.uri {
				t.Errorf("%s reached the API as %s, want %s", tt.path, e.URI, tt.uri)
			}
		}
	})

	t.Run("methods and bodies", func(t *testing.T) {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			payload := `{"title":"` + method + ` through the gateway"}`
			resp, body := apiDo(t, method, "/connectors/rest/api/issues?draft=1", "alice", strings.NewReader(payload),
				http.Header{"Content-Type": {"application/json"}})
			e := decodeEcho(t, resp, body)
			if e.Method != method || e.Body != payload || e.URI != "/v1/issues?draft=1" {
				t.Errorf("%s: the API got %+v", method, e)
			}
		}
		resp, body := apiDo(t, http.MethodHead, "/connectors/rest/api/users", "alice", nil, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("X-Request-Id") != "api-answer" {
			t.Errorf("HEAD: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("the gateway's origin", func(t *testing.T) {
		resp, body := apiDo(t, http.MethodGet, "/connectors/rest/api/users", "alice", nil, nil)
		decodeEcho(t, resp, body)
		for _, name := range []string{"Set-Cookie", "Clear-Site-Data", "Access-Control-Allow-Origin", "X-Api-Answer"} {
			if v := resp.Header.Get(name); v != "" {
				t.Errorf("the API's %s reached the caller: %q", name, v)
			}
		}
		if resp.Header.Get("X-Request-Id") != "api-answer" {
			t.Error("the API's own headers did not reach the caller")
		}
		// A page on another site may not write through the connector.
		resp, body = apiDo(t, http.MethodPost, "/connectors/rest/api/issues", "alice", strings.NewReader("{}"),
			http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}})
		if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("cross-site")) {
			t.Errorf("a cross-site POST: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("access", func(t *testing.T) {
		before := len(api.requests())
		tests := []struct {
			name, method, path, user string
			status                   int
			want                     string
		}{
			{"no grant", "GET", "/connectors/rest/api/users", "dave", 404, "no such connector"},
			{"a grant of tools only", "GET", "/connectors/rest/api/users", "carol", 404, "no such connector"},
			{"a grant of another connector", "GET", "/connectors/keyed/api/users", "bob", 404, "no such connector"},
			{"unknown connector", "GET", "/connectors/nosuch/api/users", "alice", 404, "no such connector"},
			{"an MCP connector's api", "GET", "/connectors/mcponly/api/x", "alice", 404, "no such connector"},
			{"an API connector's mcp", "POST", "/connectors/rest/mcp", "alice", 404, "no such connector"},
			{"read-only grant writes", "POST", "/connectors/rest/api/issues", "bob", 403, "read-only"},
			{"read-only grant deletes", "DELETE", "/connectors/rest/api/issues/1", "bob", 403, "read-only"},
			{"dot segment", "GET", "/connectors/rest/api/../../admin", "alice", 400, "segment"},
			{"encoded dot segment", "GET", "/connectors/rest/api/%2e%2e/admin", "alice", 400, "segment"},
			{"encoded slash and dots", "GET", "/connectors/rest/api/x/..%2F..%2Fadmin", "alice", 400, "segment"},
			{"twice encoded dots", "GET", "/connectors/rest/api/%252e%252e/admin", "alice", 400, "segment"},
			{"no identity", "GET", "/anon/connectors/rest/api/users", "", 401, "authentication is missing"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := apiDo(t, tt.method, tt.path, tt.user, nil, nil)
				if resp.StatusCode != tt.status || !bytes.Contains(body, []byte(tt.want)) {
					t.Errorf("%d %s, want %d with %q", resp.StatusCode, body, tt.status, tt.want)
				}
				if resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q, want JSON", resp.Header.Get("Content-Type"))
				}
			})
		}
		if n := len(api.requests()) - before; n != 0 {
			t.Errorf("refused requests reached the API %d times", n)
		}
		// The read-only grant still reads.
		resp, body := apiDo(t, http.MethodGet, "/connectors/rest/api/users", "bob", nil, nil)
		decodeEcho(t, resp, body)
	})

	t.Run("method overrides", func(t *testing.T) {
		// A header that makes the API run another method than the one the
		// gateway checked against the grant never reaches the API.
		overrides := http.Header{"X-Http-Method-Override": {"DELETE"}, "X-Http-Method": {"DELETE"}, "X-Method-Override": {"DELETE"}}
		before := len(api.requests())
		resp, body := apiDo(t, http.MethodGet, "/connectors/rest/api/issues/1", "bob", nil, overrides)
		if e := decodeEcho(t, resp, body); e.Method != http.MethodGet {
			t.Errorf("a read-only GET reached the API as %s", e.Method)
		}
		resp, body = apiDo(t, http.MethodPost, "/connectors/rest/api/issues/1", "alice", strings.NewReader("{}"),
			with(overrides, http.Header{"Content-Type": {"application/json"}}))
		decodeEcho(t, resp, body)
		seen := api.requests()[before:]
		if len(seen) != 2 {
			t.Fatalf("the API got %d requests, want 2", len(seen))
		}
		for _, r := range seen {
			for name := range overrides {
				if v := r.Header.Get(name); v != "" {
					t.Errorf("%s %s: the API got %s %q", r.Method, r.URI, name, v)
				}
			}
		}
	})

	t.Run("statuses", func(t *testing.T) {
		resp, body := apiDo(t, http.MethodGet, "/connectors", "alice", nil, nil)
		var out struct {
			Connectors []map[string]any `json:"connectors"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
			t.Fatalf("GET /connectors: %d %s", resp.StatusCode, body)
		}
		byID := map[string]map[string]any{}
		for _, c := range out.Connectors {
			byID[c["id"].(string)] = c
		}
		if c := byID["rest"]; c["api"] != "/connectors/rest/api/" || c["mcp"] != nil || c["status"] != "ready" {
			t.Errorf("rest in GET /connectors: %v", c)
		}
		if c := byID["both"]; c["api"] != "/connectors/both/api/" || c["mcp"] != "/connectors/both/mcp" || c["status"] != "ready" {
			t.Errorf("both in GET /connectors: %v", c)
		}
	})

	t.Run("keep-alive", func(t *testing.T) {
		before := api.newConns.Load()
		for range 20 {
			resp, body := apiDo(t, http.MethodGet, "/connectors/rest/api/users", "alice", nil, nil)
			decodeEcho(t, resp, body)
		}
		if n := api.newConns.Load() - before; n > 2 {
			t.Errorf("20 sequential requests opened %d connections to the API", n)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		// The connector's timeout bounds the wait for response headers ...
		start := time.Now()
		resp, body := apiDo(t, http.MethodGet, "/connectors/slow/api/slow-headers", "alice", nil, nil)
		if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 1900*time.Millisecond {
			t.Errorf("slow headers: %d %s after %v, want 504 after about 1s", resp.StatusCode, body, time.Since(start))
		}
		// ... not a body that streams for longer.
		resp, body = apiDo(t, http.MethodGet, "/connectors/slow/api/slow-body", "alice", nil, nil)
		if resp.StatusCode != http.StatusOK || string(body) != "part 0\npart 1\npart 2\n" {
			t.Errorf("slow body: %d %q", resp.StatusCode, body)
		}
	})
}

// TestAPIStreaming checks that neither a response nor a request body is
// held whole by the gateway: the API sends more than 64 MiB only once the
// agent has the first chunk, and reads more than 64 MiB only after it has
// the first chunk while the agent is still to send the rest; memory stays
// well below the size of either.
func TestAPIStreaming(t *testing.T) {
	api := startAPIGateway(t)
	total := int64(len(chunk)) * (bigChunks + 1)
	if total <= 64<<20 {
		t.Fatalf("the stream is %d bytes, not more than 64 MiB", total)
	}

	t.Run("download", func(t *testing.T) {
		api.clientGotFirst = make(chan struct{})
		heap := watchHeap(t)
		req, _ := http.NewRequest(http.MethodGet, apiSite+"/connectors/rest/api/stream", nil)
		req.SetBasicAuth("alice", apiPasswords["alice"])
		resp, err := apiClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		first := make([]byte, len(chunk))
		if _, err := io.ReadFull(resp.Body, first); err != nil || !bytes.Equal(first, chunk) {
			t.Fatalf("the first chunk: %v", err)
		}
		close(api.clientGotFirst)
		n, err := checkStream(resp.Body, int64(len(chunk)))
		if err := <-api.streamErr; err != nil {
			t.Fatal(err)
		}
		if err != nil || n != total {
			t.Fatalf("read %d of %d bytes: %v", n, total, err)
		}
		grew := heap()
		t.Logf("the heap grew by at most %d KiB while %d MiB streamed through", grew>>10, total>>20)
		if grew > 32<<20 {
			t.Errorf("the heap grew by %d MiB while %d MiB streamed through", grew>>20, total>>20)
		}
	})

	t.Run("upload", func(t *testing.T) {
		api.serverGotFirst = make(chan struct{})
		heap := watchHeap(t)
		pr, pw := io.Pipe()
		go func() {
			if _, err := pw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
			select {
			case <-api.serverGotFirst:
			case <-time.After(10 * time.Second):
				pw.CloseWithError(errors.New("the API did not receive the first chunk while the agent waited: the gateway held it back"))
				return
			}
			for range bigChunks {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		resp, body := apiDo(t, http.MethodPost, "/connectors/rest/api/upload", "alice", pr,
			http.Header{"Content-Type": {"application/octet-stream"}})
		var out struct{ Bytes int64 }
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.Bytes != total {
			t.Fatalf("upload: %d %s, want %d bytes received", resp.StatusCode, body, total)
		}
		grew := heap()
		t.Logf("the heap grew by at most %d KiB while %d MiB streamed through", grew>>10, total>>20)
		if grew > 32<<20 {
			t.Errorf("the heap grew by %d MiB while %d MiB streamed through", grew>>20, total>>20)
		}
	})
}

// watchHeap samples the live heap until the returned func is called,
// which reports its largest growth over the start. Caddy, the API and the
// agent share this process, so a gateway that held a body whole would
// show here.
func watchHeap(t testing.TB) func() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
					peak.Store(ms.HeapAlloc - base)
				}
			}
		}
	}()
	var once sync.Once
	stop := func() uint64 {
		once.Do(func() { close(done); <-stopped })
		return peak.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestAPIOAuth checks an OAuth API connector against a real authorization
// server: the API is its protected resource; a user who has not consented
// gets the connect URL; after consent the API gets that user's token, and
// a token it refuses is refreshed for the next request.
func TestAPIOAuth(t *testing.T) {
	var protected atomic.Pointer[http.Handler]
	var apiHits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*protected.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	as := testas.Start(t, testas.Options{Resource: api.URL + "/v1", Accounts: []string{"alice", "bob"}})
	var lastToken atomic.Value
	inner := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHits.Add(1)
		lastToken.Store(r.Header.Get("Authorization"))
		if r.URL.Path == "/v1/refuse" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	guarded := as.Protect(inner)
	protected.Store(&guarded)

	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	startAPICaddy(t, fmt.Sprintf(`{
	%[1]s
	mcpgate {
		public_url %[2]s
		storage badger %[3]s
		seal_key %[4]s
		connector notesapi {
			api %[5]s/v1
			auth oauth {
				insecure_loopback
			}
		}
		grant {
			src *
			connectors notesapi
		}
	}
}
%[2]s {
	basic_auth {
%[6]s	}
	mcpgate
}
`, apiGlobals, apiSite, filepath.Join(dir, "db"), base64.StdEncoding.EncodeToString(key), api.URL, basicAuthUsers(t, apiPasswords)))

	connectURL := apiSite + "/connectors?connect=notesapi"
	needsConsent := func(user string) {
		t.Helper()
		resp, body := apiDo(t, http.MethodGet, "/connectors/notesapi/api/notes", user, nil, nil)
		var out map[string]string
		if resp.StatusCode != http.StatusForbidden || json.Unmarshal(body, &out) != nil ||
			!strings.HasPrefix(out["connect_url"], connectURL+"&for=") || out["status"] != "needs_auth" || !strings.Contains(out["error"], out["connect_url"]) {
			t.Fatalf("%s before consent: %d %s", user, resp.StatusCode, body)
		}
	}
	needsConsent("alice")
	if n := apiHits.Load(); n != 0 {
		t.Fatalf("the API was called %d times without a token", n)
	}

	// alice consents, the way the Connectors page does.
	resp, body := apiDo(t, http.MethodPost, "/connectors/notesapi/connect", "alice", strings.NewReader("{}"),
		http.Header{"Content-Type": {"application/json"}})
	var started struct {
		AuthURL string `json:"auth_url"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &started) != nil {
		t.Fatalf("connect: %d %s", resp.StatusCode, body)
	}
	callback := testas.Authorize(t, started.AuthURL, "alice", apiSite+"/connect/callback?")
	resp, body = apiDo(t, http.MethodGet, strings.TrimPrefix(callback, apiSite), "alice", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Connected notesapi")) {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}

	resp, body = apiDo(t, http.MethodGet, "/connectors/notesapi/api/notes?page=2", "alice", nil, nil)
	if resp.StatusCode != http.StatusOK || string(body) != "hello from /v1/notes" {
		t.Fatalf("alice after consent: %d %s", resp.StatusCode, body)
	}
	if seen := as.Seen(); !slices.Equal(seen, []string{"alice"}) {
		t.Fatalf("the API saw the tokens of %v, want alice's", seen)
	}
	token, _ := lastToken.Load().(string)
	if !strings.HasPrefix(token, "Bearer ") || strings.Contains(token, "Basic") {
		t.Fatalf("the API got Authorization %q", token)
	}
	// Per-user consent: bob has none, and alice's token is not his.
	needsConsent("bob")

	// A 401 from the API reaches the agent as it is, and the token is
	// refreshed for the next request.
	refreshes := func() int {
		st, err := as.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.TokenRequests["refresh_token"]
	}
	before := refreshes()
	resp, body = apiDo(t, http.MethodGet, "/connectors/notesapi/api/refuse", "alice", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte("refused")) {
		t.Fatalf("refused: %d %s", resp.StatusCode, body)
	}
	if n := refreshes() - before; n != 1 {
		t.Fatalf("the refused token caused %d refreshes, want 1", n)
	}
	resp, body = apiDo(t, http.MethodGet, "/connectors/notesapi/api/notes", "alice", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alice after the refresh: %d %s", resp.StatusCode, body)
	}
	if fresh, _ := lastToken.Load().(string); fresh == token {
		t.Error("the request after the refusal used the refused token")
	}
}

// TestAPIProvisionErrors checks what only provisioning can: an api whose
// placeholder resolves to a bad URL, or is not set.
func TestAPIProvisionErrors(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"bad scheme", "ftp://api.example.com", `connector c: api "ftp://api.example.com": scheme must be http or https`},
		{"query", "https://api.example.com/?k=v", "must not have a query"},
		{"unset", "", "connector c: api:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MCPGATE_TEST_BAD_API", tt.value)
			cfg := `{"apps":{"mcpgate":{"connectors":[{"id":"c","api":"{env.MCPGATE_TEST_BAD_API}"}]}}}`
			var c caddy.Config
			if err := json.Unmarshal([]byte(cfg), &c); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	// Neither url nor api in JSON.
	var c caddy.Config
	_ = json.Unmarshal([]byte(`{"apps":{"mcpgate":{"connectors":[{"id":"c"}]}}}`), &c)
	if err := caddy.Validate(&c); err == nil || !strings.Contains(err.Error(), "url is required unless api is set") {
		t.Errorf("a connector with neither: %v", err)
	}
}
