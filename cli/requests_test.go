package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeAdmin is an admin API on loopback that records what the CLI sends
// and answers every request with an empty connector, so that a test can
// check the request a command makes without a Caddy.
type fakeAdmin struct {
	srv  *httptest.Server
	mu   sync.Mutex
	sent []sentRequest
}

// sentRequest is one request the CLI sent.
type sentRequest struct {
	Method, Path string
	Body         any
}

func startFakeAdmin(t *testing.T) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body any
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		f.sent = append(f.sent, sentRequest{r.Method, r.URL.RequestURI(), body})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","ok":true,"steps":[],"revoked":[],"tokens":"kept"}`)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// run runs a command against f and returns the request it sent.
func (f *fakeAdmin) run(t *testing.T, stdin string, args ...string) sentRequest {
	t.Helper()
	f.mu.Lock()
	f.sent = nil
	f.mu.Unlock()
	addr := strings.TrimPrefix(f.srv.URL, "http://")
	if _, errOut, err := runCLI(t, stdin, append(args, "--address", addr)...); err != nil {
		t.Fatalf("caddy mcpgate %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) != 1 {
		t.Fatalf("caddy mcpgate %s sent %d requests, want 1", strings.Join(args, " "), len(f.sent))
	}
	return f.sent[0]
}

// asJSON is v as the CLI's JSON decodes it, for comparisons.
func asJSON(t *testing.T, v string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCLIRequests checks the requests of the commands that AGP's CLI
// also has, as the admin API receives them: the OAuth overrides and
// client_name on add and update; an update that sends only what its
// flags name, clearing with an empty value; scopes sent as the text
// given, for the admin API to split; enable and disable; --name wherever
// an id goes.
func TestCLIRequests(t *testing.T) {
	f := startFakeAdmin(t)
	for _, tc := range []struct {
		name, stdin  string
		args         []string
		method, path string
		body         string // "" for none
	}{
		{"add with overrides", "", []string{"connectors", "add", "--name", "x", "--mcp-server-url", "https://x.example.com/mcp",
			"--issuer", "https://as.example.com", "--authorization-endpoint", "https://as.example.com/authorize",
			"--token-endpoint", "https://as.example.com/token", "--registration-endpoint", "https://as.example.com/register",
			"--revocation-endpoint", "https://as.example.com/revoke", "--client-name", "Acme X", "--scopes", "read, write", "--scopes", "offline_access\nopenid"},
			"POST", "/mcpgate/connectors", `{"id":"x","url":"https://x.example.com/mcp","auth":{"type":"oauth","oauth":{
				"scopes":"read, write,offline_access\nopenid","issuer":"https://as.example.com","authorization_endpoint":"https://as.example.com/authorize",
				"token_endpoint":"https://as.example.com/token","registration_endpoint":"https://as.example.com/register",
				"revocation_endpoint":"https://as.example.com/revoke","client_name":"Acme X"}}}`},
		{"add with dpop", "", []string{"connectors", "add", "x", "--mcp-server-url", "https://x.example.com/mcp", "--dpop", "on"},
			"POST", "/mcpgate/connectors", `{"id":"x","url":"https://x.example.com/mcp","auth":{"type":"oauth","oauth":{"dpop":"on"}}}`},
		{"update dpop", "", []string{"connectors", "update", "x", "--dpop", "off"},
			"PATCH", "/mcpgate/connectors/x", `{"auth":{"type":"oauth","token":null,"header":null,"value":null,"oauth":{"dpop":"off"}}}`},
		{"update a title", "", []string{"connectors", "update", "x", "--title", "X", "--description", ""},
			"PATCH", "/mcpgate/connectors/x", `{"title":"X","description":null}`},
		{"update OAuth", "", []string{"connectors", "update", "--name", "x", "--scopes", "a b", "--client-name", "", "--issuer", "https://as2.example.com", "--insecure-loopback=false"},
			"PATCH", "/mcpgate/connectors/x", `{"auth":{"type":"oauth","token":null,"header":null,"value":null,
				"oauth":{"scopes":"a b","client_name":null,"issuer":"https://as2.example.com","insecure_loopback":false}}}`},
		{"update to a bearer", "new-token\n", []string{"connectors", "update", "x", "--bearer", "-"},
			"PATCH", "/mcpgate/connectors/x", `{"auth":{"type":"bearer","token":"new-token","header":null,"value":null,"oauth":null}}`},
		{"update the URL", "", []string{"connectors", "update", "x", "--mcp-server-url", "https://y.example.com/mcp"},
			"PATCH", "/mcpgate/connectors/x", `{"url":"https://y.example.com/mcp"}`},
		{"enable", "", []string{"connectors", "enable", "--name", "x"}, "PATCH", "/mcpgate/connectors/x", `{"enabled":true}`},
		{"disable", "", []string{"connectors", "disable", "x", "--name", "x"}, "PATCH", "/mcpgate/connectors/x", `{"enabled":false}`},
		{"show by name", "", []string{"connectors", "show", "--name", "x"}, "GET", "/mcpgate/connectors/x", ""},
		{"connect by name", "", []string{"connectors", "connect", "--name", "x", "--user", "alice"}, "POST", "/mcpgate/connectors/x/connect?user=alice", ""},
		{"remove by name", "", []string{"connectors", "remove", "--name", "x"}, "DELETE", "/mcpgate/connectors/x", ""},
		{"diagnose by name", "", []string{"connectors", "diagnose", "--name", "x", "--json"}, "GET", "/mcpgate/connectors/x/diagnose", ""},
		{"tools by name", "", []string{"connectors", "tools", "--name", "x", "--approve", "echo"}, "POST", "/mcpgate/connectors/x/tools/approve", `{"tools":["echo"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := f.run(t, tc.stdin, tc.args...)
			if got.Method != tc.method || got.Path != tc.path {
				t.Errorf("sent %s %s, want %s %s", got.Method, got.Path, tc.method, tc.path)
			}
			var want any
			if tc.body != "" {
				want = asJSON(t, tc.body)
			}
			if !reflect.DeepEqual(got.Body, want) {
				gotJSON, _ := json.Marshal(got.Body)
				t.Errorf("sent body %s, want %s", gotJSON, tc.body)
			}
		})
	}
}

// TestCLINameErrors checks what the commands that take an id say when it
// is given twice differently, or not at all.
func TestCLINameErrors(t *testing.T) {
	f := startFakeAdmin(t)
	addr := strings.TrimPrefix(f.srv.URL, "http://")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connectors", "show", "a", "--name", "b"}, `the id is "a" or "b"? give it once`},
		{[]string{"connectors", "show"}, "say which connector: give its id as the argument or with --name"},
		{[]string{"connectors", "enable"}, "say which connector"},
		{[]string{"connectors", "tools"}, "say which connector"},
		{[]string{"connectors", "update", "x"}, "say what to change"},
		{[]string{"connectors", "update", "x", "--bearer", "t", "--dcr"}, "choose one kind of credential"},
	} {
		_, _, err := runCLI(t, "", append(tc.args, "--address", addr)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("caddy mcpgate %s: %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if len(f.sent) != 0 {
		t.Errorf("refused commands sent %d requests", len(f.sent))
	}
}
