package examples_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/mark3labs/mcp-go/client"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/caddy-mcpgate"
	"github.com/mcpgate/caddy-mcpgate/examples/demo"
	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/sitetest"
	"github.com/mcpgate/caddy-mcpgate/internal/testas"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// Ports of their own, so that these tests never meet the root package's
// integration tests, which go test may run at the same time.
const (
	adminPort = 2998
	addr      = "127.0.0.1:9180"
)

// runExample loads an example Caddyfile into a real Caddy, with env set.
func runExample(t *testing.T, file string, env map[string]string) {
	t.Helper()
	env["MCPGATE_ADMIN"] = "localhost:2998"
	env["MCPGATE_ADDR"] = addr
	for k, v := range env {
		t.Setenv(k, v)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tester := sitetest.NewTester(t, adminPort)
	tester.InitServer(string(raw), "caddyfile")
}

// demoUpstream serves the demo MCP server, requiring header to equal value
// when header is set.
func demoUpstream(t *testing.T, header, value string) string {
	h := demo.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if header != "" && r.Header.Get(header) != value {
			http.Error(w, "missing credential", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		// The gateway keeps a notification stream open to its upstream
		// for as long as it runs; cut it, or Close waits for it.
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/mcp"
}

// agent connects a real MCP client to the example's /mcp.
func agent(t *testing.T, headers map[string]string, opts ...client.ClientOption) *client.Client {
	return agenttest.Dial(t, "http://"+addr+"/mcp", headers, opts...)
}

func TestQuickstart(t *testing.T) {
	runExample(t, "quickstart/Caddyfile", map[string]string{"DEMO_URL": demoUpstream(t, "", "")})
	for _, era := range agenttest.Eras {
		c := agent(t, nil, era.Opts...)
		names := agenttest.ToolNames(t, c)
		for _, want := range []string{"demo_echo", "demo_add", "demo_notes_append", "mcpgate_list_connectors"} {
			if !slices.Contains(names, want) {
				t.Errorf("%s is not listed: %v", want, names)
			}
		}
		res, err := agenttest.Call(c, "demo_add", map[string]any{"a": 2, "b": 3})
		if err != nil || res.IsError {
			t.Fatalf("demo_add: %v %+v", err, res)
		}
	}
}

func TestTeam(t *testing.T) {
	runExample(t, "team.caddyfile", map[string]string{
		"DEMO_URL":   demoUpstream(t, "Authorization", "Bearer demo-secret"),
		"DEMO_TOKEN": "demo-secret",
		"NOTES_URL":  demoUpstream(t, "X-Api-Key", "notes-secret"),
		"NOTES_KEY":  "notes-secret",
	})
	login := func(user, pw string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))}
	}
	alice := agenttest.ToolNames(t, agent(t, login("alice", "alice-pw")))
	for _, want := range []string{"demo_notes_append", "notes_echo"} {
		if !slices.Contains(alice, want) {
			t.Errorf("alice does not list %s: %v", want, alice)
		}
	}
	bob := agenttest.ToolNames(t, agent(t, login("bob", "bob-pw")))
	if !slices.Contains(bob, "demo_echo") || slices.Contains(bob, "demo_notes_append") || slices.Contains(bob, "notes_echo") {
		t.Errorf("bob's read-only view is wrong: %v", bob)
	}
}

func TestOAuth(t *testing.T) {
	up := testupstream.StartT(t, testupstream.Options{Name: "notes"})
	as := testas.Start(t, testas.Options{Resource: up.URL, Accounts: []string{"alice"}})
	up.SetGuard(as.Protect)
	dir := t.TempDir()
	// Unload the config, closing the store, before its directory goes.
	t.Cleanup(func() { _ = caddy.Load([]byte(`{"admin":{"listen":"localhost:2998"}}`), true) })
	accessLog := filepath.Join(dir, "access.log")
	t.Setenv("XDG_DATA_HOME", dir) // the store goes to Caddy's data directory
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	raw, err := os.ReadFile("oauth.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	// The test's authorization server is on loopback over http, which
	// only insecure_loopback allows.
	cfg := strings.Replace(string(raw), "consent per_user", "consent per_user\n\t\t\t\tinsecure_loopback", 1)
	for k, v := range map[string]string{
		"MCPGATE_ADMIN": "localhost:2998", "MCPGATE_ADDR": addr, "NOTES_URL": up.URL,
		"MCPGATE_SEAL_KEY": base64.StdEncoding.EncodeToString(key), "MCPGATE_ACCESS_LOG": accessLog,
	} {
		t.Setenv(k, v)
	}
	sitetest.NewTester(t, adminPort).InitServer(cfg, "caddyfile")

	alice := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-pw"))
	post := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, nil)
		req.Header.Set("Authorization", alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("/connectors/notes/connect")
	var out struct {
		AuthURL string `json:"auth_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	callback := testas.Authorize(t, out.AuthURL, "alice", "http://"+addr+"/connect/callback?")
	req, _ := http.NewRequest(http.MethodGet, callback, nil)
	req.Header.Set("Authorization", alice)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	res, err := agenttest.Call(agent(t, map[string]string{"Authorization": alice}), "notes_echo", map[string]any{"message": "hi"})
	if err != nil || res.IsError {
		t.Fatalf("notes_echo after consent: %v %+v", err, res)
	}
	log, err := os.ReadFile(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "/connect/callback") || strings.Contains(string(log), "code=") || strings.Contains(string(log), "state=") {
		t.Fatalf("the access log keeps the callback's code or state:\n%s", log)
	}
}

// TestExamplesBoundSlowClients checks that every example cuts off a client
// that trickles its request (read_header and read_body) and sets no write
// timeout, which would cut MCP response streams short.
func TestExamplesBoundSlowClients(t *testing.T) {
	for _, file := range []string{"quickstart/Caddyfile", "team.caddyfile", "oauth.caddyfile"} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": file})
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							ReadHeader caddy.Duration `json:"read_header_timeout"`
							Read       caddy.Duration `json:"read_timeout"`
							Write      caddy.Duration `json:"write_timeout"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(adapted, &cfg); err != nil {
				t.Fatal(err)
			}
			if len(cfg.Apps.HTTP.Servers) == 0 {
				t.Fatal("no servers")
			}
			for name, srv := range cfg.Apps.HTTP.Servers {
				if srv.ReadHeader <= 0 || srv.Read <= 0 || srv.Write != 0 {
					t.Errorf("server %s: read_header %v, read_body %v, write %v; want both reads bounded and no write timeout",
						name, time.Duration(srv.ReadHeader), time.Duration(srv.Read), time.Duration(srv.Write))
				}
			}
		})
	}
}

// TestSlowHeadersAreCutOff runs the quickstart with its read_header
// timeout shortened and trickles a request's headers: the server closes
// the connection instead of waiting for ever.
func TestSlowHeadersAreCutOff(t *testing.T) {
	raw, err := os.ReadFile("quickstart/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(raw), "read_header 10s", "read_header 300ms", 1)
	if short == string(raw) {
		t.Fatal("the quickstart has no read_header 10s line to shorten")
	}
	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	runExample(t, file, map[string]string{"DEMO_URL": demoUpstream(t, "", "")})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\n")); err != nil {
		t.Fatal(err)
	}
	// Far longer than the timeout, far shorter than the wait of a server
	// without one.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server held a connection whose headers never finished")
	}
}
