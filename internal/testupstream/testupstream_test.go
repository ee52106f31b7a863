package testupstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// clientEra is how a test client negotiates.
type clientEra int

const (
	// legacyClient pins 2025-11-25, so it only performs initialize.
	legacyClient clientEra = iota
	// modernClient uses mcp-go's defaults: server/discover first, then
	// initialize if discovery fails.
	modernClient
)

func (e clientEra) String() string {
	if e == legacyClient {
		return "legacy-client"
	}
	return "default-client"
}

var quiet = slog.New(slog.DiscardHandler)

// newClient starts an mcp-go client for url without initializing it.
func newClient(t testing.TB, url string, era clientEra, topts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	// The client logs lost connections at INFO and ERROR; tests cause them.
	topts = append([]transport.StreamableHTTPCOption{transport.WithHTTPLogger(quiet)}, topts...)
	trans, err := transport.NewStreamableHTTP(url, topts...)
	if err != nil {
		t.Fatal(err)
	}
	var copts []client.ClientOption
	if era == legacyClient {
		copts = append(copts, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	}
	c := client.NewClient(trans, copts...)
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func initialize(ctx context.Context, c *client.Client) error {
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "testupstream-test", Version: "1.0.0"}
	_, err := c.Initialize(ctx, req)
	return err
}

// connect returns an initialized client, failing the test if it cannot.
func connect(t testing.TB, url string, era clientEra, topts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	c := newClient(t, url, era, topts...)
	if err := initialize(t.Context(), c); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

func callTool(ctx context.Context, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return c.CallTool(ctx, req)
}

// text returns the text of a result's first content item.
func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) == 0 {
		t.Fatal("result has no content")
	}
	tc, ok := res.Content[0].(mcp.TextContent)
	if !ok {
		t.Fatalf("first content is %T, want text", res.Content[0])
	}
	return tc.Text
}

func TestEras(t *testing.T) {
	tests := []struct {
		server  Era
		client  clientEra
		version string // negotiated; empty means the connection must fail
		fails   string // text of the failure
	}{
		{BothEras, legacyClient, mcp.ProtocolVersion20251125, ""},
		{BothEras, modernClient, mcp.ProtocolVersion20260728, ""},
		{LegacyOnly, legacyClient, mcp.ProtocolVersion20251125, ""},
		// server/discover fails and the client falls back to initialize.
		{LegacyOnly, modernClient, mcp.ProtocolVersion20251125, ""},
		{ModernOnly, modernClient, mcp.ProtocolVersion20260728, ""},
		{ModernOnly, legacyClient, "", "initialize is not supported: use server/discover (2026-07-28)"},
	}
	for _, tt := range tests {
		t.Run(tt.server.String()+"/"+tt.client.String(), func(t *testing.T) {
			up := StartT(t, Options{Name: "alpha", Era: tt.server})
			c := newClient(t, up.URL, tt.client)
			err := initialize(t.Context(), c)
			if tt.version == "" {
				if err == nil || !strings.Contains(err.Error(), tt.fails) {
					t.Fatalf("initialize error = %v, want one containing %q", err, tt.fails)
				}
				return
			}
			if err != nil {
				t.Fatalf("initialize: %v", err)
			}
			if got := c.ProtocolVersion(); got != tt.version {
				t.Fatalf("negotiated %q, want %q", got, tt.version)
			}
			exercise(t, c, "alpha")
		})
	}
}

// exercise drives every kind of request through c against an instance
// named name.
func exercise(t *testing.T, c *client.Client, name string) {
	t.Helper()
	ctx := t.Context()
	checkLists(t, c, name)

	res, err := callTool(ctx, c, "echo", map[string]any{"message": "hi ✓"})
	if err != nil || text(t, res) != "hi ✓" {
		t.Fatalf("echo = %v, %v", res, err)
	}
	res, err = callTool(ctx, c, "rich", nil)
	if err != nil {
		t.Fatalf("rich: %v", err)
	}
	if len(res.Content) != 7 || !bytes.Equal(res.RawStructuredContent, richStructured) || res.IsError {
		t.Fatalf("rich = %d items, structured %s, isError %v", len(res.Content), res.RawStructuredContent, res.IsError)
	}
	res, err = callTool(ctx, c, "fail", nil)
	if err != nil || !res.IsError || text(t, res) != "it failed" {
		t.Fatalf("fail = %+v, %v", res, err)
	}

	checkResources(t, c, name)
	checkPrompts(t, c, name)
	checkCompletions(t, c, name)
}

func checkLists(t *testing.T, c *client.Client, name string) {
	t.Helper()
	ctx := t.Context()
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	want := []string{"echo", "rich", "extension", "fail", "slow", "progress", "delete_everything", LongToolName, "whoami"}
	for _, n := range want {
		if !slices.Contains(names, n) {
			t.Errorf("tools/list lacks %q; has %v", n, names)
		}
	}
	resources, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil || len(resources.Resources) != 3 {
		t.Fatalf("resources/list = %v, %v", resources, err)
	}
	templates, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil || len(templates.ResourceTemplates) != 1 {
		t.Fatalf("resources/templates/list = %v, %v", templates, err)
	}
	if got := templates.ResourceTemplates[0].URITemplate.Raw(); got != itemTemplate(name) {
		t.Errorf("template = %q, want %q", got, itemTemplate(name))
	}
	prompts, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil || len(prompts.Prompts) != 2 {
		t.Fatalf("prompts/list = %v, %v", prompts, err)
	}
}

func checkResources(t *testing.T, c *client.Client, name string) {
	t.Helper()
	for uri, want := range map[string]string{
		"test://" + name + "/readme":   "readme of " + name,
		SharedResourceURI:              "common from " + name,
		"test://" + name + "/items/42": "item 42 of " + name,
	} {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		res, err := c.ReadResource(t.Context(), req)
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		if got := res.Contents[0].(mcp.TextResourceContents).Text; got != want {
			t.Errorf("read %s = %q, want %q", uri, got, want)
		}
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "test://" + name + "/logo.png"
	res, err := c.ReadResource(t.Context(), req)
	if err != nil || res.Contents[0].(mcp.BlobResourceContents).Blob != pngBase64 {
		t.Fatalf("read logo = %v, %v", res, err)
	}
}

func checkPrompts(t *testing.T, c *client.Client, name string) {
	t.Helper()
	req := mcp.GetPromptRequest{}
	req.Params.Name = "greet"
	req.Params.Arguments = map[string]string{"who": "Ada"}
	res, err := c.GetPrompt(t.Context(), req)
	if err != nil {
		t.Fatalf("prompts/get greet: %v", err)
	}
	want := "Hello, Ada, from " + name
	if got := res.Messages[0].Content.(mcp.TextContent).Text; got != want || res.Messages[0].Role != mcp.RoleUser {
		t.Errorf("greet = %s %q, want user %q", res.Messages[0].Role, got, want)
	}
	req = mcp.GetPromptRequest{}
	req.Params.Name = "plain"
	if _, err := c.GetPrompt(t.Context(), req); err != nil {
		t.Errorf("prompts/get plain: %v", err)
	}
}

func checkCompletions(t *testing.T, c *client.Client, name string) {
	t.Helper()
	tests := []struct {
		ref       any
		arg, text string
		want      []string
	}{
		{mcp.PromptReference{Type: "ref/prompt", Name: "greet"}, "who", "al", []string{"alice", "albert"}},
		{mcp.PromptReference{Type: "ref/prompt", Name: "greet"}, "who", "z", []string{}},
		{mcp.ResourceReference{Type: "ref/resource", URI: itemTemplate(name)}, "id", "", []string{"1", "2", "3"}},
	}
	for _, tt := range tests {
		req := mcp.CompleteRequest{}
		req.Params.Ref = tt.ref
		req.Params.Argument = mcp.CompleteArgument{Name: tt.arg, Value: tt.text}
		res, err := c.Complete(t.Context(), req)
		if err != nil {
			t.Fatalf("complete %s=%q: %v", tt.arg, tt.text, err)
		}
		if !slices.Equal(res.Completion.Values, tt.want) {
			t.Errorf("complete %s=%q = %v, want %v", tt.arg, tt.text, res.Completion.Values, tt.want)
		}
	}
}

// rawPost sends one JSON-RPC message without an SDK, for the failures an
// SDK client would hide behind its fallbacks.
func rawPost(t *testing.T, url, version, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if version != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, version)
	}
	// 2026-07-28 requires the method in a header too (SEP-2243).
	var msg struct {
		Method string `json:"method"`
	}
	if json.Unmarshal([]byte(body), &msg) == nil {
		req.Header.Set(mcp.HeaderMethod, msg.Method)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// rpcErrorCode decodes the error code of a JSON-RPC error response.
func rpcErrorCode(t *testing.T, body []byte) int {
	t.Helper()
	var msg struct {
		Error *mcp.JSONRPCErrorDetails `json:"error"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Error == nil {
		t.Fatalf("not a JSON-RPC error: %s", body)
	}
	return msg.Error.Code
}

const modernDiscover = `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{` +
	`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`

// TestLegacyOnlyRejectsModern checks what the SDK client's fallback hides:
// server/discover and every other 2026-07-28 request fail.
func TestLegacyOnlyRejectsModern(t *testing.T) {
	up := StartT(t, Options{Era: LegacyOnly})
	resp, body := rawPost(t, up.URL, mcp.ProtocolVersion20260728, modernDiscover)
	if resp.StatusCode != http.StatusBadRequest || rpcErrorCode(t, body) != mcp.UNSUPPORTED_PROTOCOL_VERSION {
		t.Fatalf("server/discover = %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), `"supported":["2025-11-25","2025-06-18","2025-03-26"]`) {
		t.Errorf("server/discover error does not list the legacy versions: %s", body)
	}

	c := newClient(t, up.URL, modernClient)
	if _, err := c.Discover(t.Context(), mcp.DiscoverRequest{}); err == nil {
		t.Error("client.Discover succeeded against LegacyOnly")
	}

	// Initialize probes with server/discover, then falls back.
	up.ResetRequests()
	c = connect(t, up.URL, modernClient)
	if got := methods(up.Requests()); len(got) < 2 || !slices.Equal(got[:2], []string{"server/discover", "initialize"}) {
		t.Errorf("requests = %v, want server/discover then initialize", got)
	}
	if v := c.ProtocolVersion(); v >= mcp.ProtocolVersion20260728 {
		t.Errorf("negotiated %s", v)
	}
}

// methods lists the JSON-RPC methods of recorded POSTs.
func methods(reqs []Request) []string {
	var out []string
	for _, r := range reqs {
		var msg struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(r.Body, &msg) == nil {
			out = append(out, msg.Method)
		}
	}
	return out
}

func TestModernOnlyRejectsLegacy(t *testing.T) {
	up := StartT(t, Options{Era: ModernOnly})
	resp, body := rawPost(t, up.URL, "", `{"jsonrpc":"2.0","id":"a","method":"initialize","params":{}}`)
	if resp.StatusCode != http.StatusOK || rpcErrorCode(t, body) != mcp.METHOD_NOT_FOUND || !strings.Contains(string(body), `"id":"a"`) {
		t.Errorf("initialize = %d %s", resp.StatusCode, body)
	}
	resp, body = rawPost(t, up.URL, mcp.ProtocolVersion20251125, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if resp.StatusCode != http.StatusBadRequest || rpcErrorCode(t, body) != mcp.UNSUPPORTED_PROTOCOL_VERSION {
		t.Errorf("legacy tools/list = %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, up.URL, nil)
	get, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", get.StatusCode)
	}
	// The modern path still works.
	resp, body = rawPost(t, up.URL, mcp.ProtocolVersion20260728, modernDiscover)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"supportedVersions":["2026-07-28"]`) {
		t.Errorf("server/discover = %d %s", resp.StatusCode, body)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		headers   map[string]string
		ok        bool
		challenge string
	}{
		{"bearer missing", Options{BearerToken: "s3cret"}, nil, false, `Bearer realm="testupstream"`},
		{"bearer wrong", Options{BearerToken: "s3cret"}, map[string]string{"Authorization": "Bearer nope"}, false, `Bearer realm="testupstream"`},
		{"bearer right", Options{BearerToken: "s3cret"}, map[string]string{"Authorization": "Bearer s3cret"}, true, ""},
		{"bearer scheme case", Options{BearerToken: "s3cret"}, map[string]string{"Authorization": "bearer s3cret"}, true, ""},
		{"header missing", Options{HeaderName: "X-Api-Key", HeaderValue: "k"}, nil, false, ""},
		{"header right", Options{HeaderName: "X-Api-Key", HeaderValue: "k"}, map[string]string{"X-Api-Key": "k"}, true, ""},
	}
	for _, tt := range tests {
		for _, era := range []clientEra{legacyClient, modernClient} {
			t.Run(tt.name+"/"+era.String(), func(t *testing.T) {
				up := StartT(t, tt.opts)
				c := newClient(t, up.URL, era, transport.WithHTTPHeaders(tt.headers))
				err := initialize(t.Context(), c)
				if tt.ok {
					if err != nil {
						t.Fatalf("initialize: %v", err)
					}
					return
				}
				var authErr *transport.AuthorizationRequiredError
				if !errors.As(err, &authErr) {
					t.Fatalf("initialize error = %v, want AuthorizationRequiredError", err)
				}
				resp, _ := rawPost(t, up.URL, "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != tt.challenge {
					t.Errorf("raw = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
}

func TestRequests(t *testing.T) {
	for _, era := range []clientEra{legacyClient, modernClient} {
		t.Run(era.String(), func(t *testing.T) {
			up := StartT(t, Options{BearerToken: "tok"})
			c := connect(t, up.URL, era, transport.WithHTTPHeaders(map[string]string{
				"Authorization": "Bearer tok",
				"X-Test-Canary": "tweet",
			}))
			res, err := callTool(t.Context(), c, "whoami", nil)
			if err != nil || text(t, res) != "authorization=present x-test-canary=tweet" {
				t.Fatalf("whoami = %v, %v", res, err)
			}
			reqs := up.Requests()
			if len(reqs) == 0 {
				t.Fatal("nothing recorded")
			}
			last := reqs[len(reqs)-1]
			if last.Method != http.MethodPost || last.Path != "/mcp" || !bytes.Contains(last.Body, []byte(`"whoami"`)) {
				t.Errorf("last request = %s %s %s", last.Method, last.Path, last.Body)
			}
			if last.Header.Get("Authorization") != "Bearer tok" || last.Header.Get("X-Test-Canary") != "tweet" {
				t.Errorf("last request headers = %v", last.Header)
			}
			up.ResetRequests()
			if n := len(up.Requests()); n != 0 {
				t.Errorf("after reset, %d requests", n)
			}
		})
	}
}

func TestWhoamiAbsent(t *testing.T) {
	up := StartT(t, Options{NoRecord: true})
	c := connect(t, up.URL, modernClient)
	res, err := callTool(t.Context(), c, "whoami", nil)
	if err != nil || text(t, res) != "authorization=absent x-test-canary=" {
		t.Fatalf("whoami = %v, %v", res, err)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("NoRecord kept %d requests", n)
	}
}

// notes collects notifications of one method.
type notes struct {
	mu   sync.Mutex
	got  []mcp.JSONRPCNotification
	want string
}

func (n *notes) handle(note mcp.JSONRPCNotification) {
	if note.Method != n.want {
		return
	}
	n.mu.Lock()
	n.got = append(n.got, note)
	n.mu.Unlock()
}

// wait returns once count notifications arrived, or fails the test.
func (n *notes) wait(t *testing.T, count int) []mcp.JSONRPCNotification {
	t.Helper()
	var got []mcp.JSONRPCNotification
	eventually(t, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		got = slices.Clone(n.got)
		return len(got) >= count
	})
	return got
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProgress(t *testing.T) {
	for _, era := range []clientEra{legacyClient, modernClient} {
		t.Run(era.String(), func(t *testing.T) {
			up := StartT(t, Options{})
			c := connect(t, up.URL, era)
			progress := &notes{want: string(mcp.MethodNotificationProgress)}
			c.OnNotification(progress.handle)

			req := mcp.CallToolRequest{}
			req.Params.Name = "progress"
			req.Params.Arguments = map[string]any{"steps": 3}
			req.Params.Meta = &mcp.Meta{ProgressToken: "tok-1"}
			res, err := c.CallTool(t.Context(), req)
			if err != nil || text(t, res) != "progressed" {
				t.Fatalf("progress = %v, %v", res, err)
			}
			got := progress.wait(t, 3)
			for i, note := range got {
				f := note.Params.AdditionalFields
				if f["progressToken"] != "tok-1" || f["progress"] != float64(i+1) || f["total"] != float64(3) || f["message"] == "" {
					t.Errorf("notification %d = %v", i, f)
				}
			}
		})
	}
}

func TestProgressWithoutToken(t *testing.T) {
	up := StartT(t, Options{})
	c := connect(t, up.URL, modernClient)
	progress := &notes{want: string(mcp.MethodNotificationProgress)}
	c.OnNotification(progress.handle)
	res, err := callTool(t.Context(), c, "progress", map[string]any{"steps": 2})
	if err != nil || text(t, res) != "progressed" {
		t.Fatalf("progress = %v, %v", res, err)
	}
	progress.mu.Lock()
	defer progress.mu.Unlock()
	if n := len(progress.got); n != 0 {
		t.Errorf("%d notifications without a progressToken", n)
	}
}

func TestSlowCancel(t *testing.T) {
	for i, era := range []clientEra{legacyClient, modernClient} {
		t.Run(era.String(), func(t *testing.T) {
			up := StartT(t, Options{})
			c := connect(t, up.URL, era)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			if _, err := callTool(ctx, c, "slow", map[string]any{"ms": 10_000}); err == nil {
				t.Fatal("slow call outlived its context")
			}
			eventually(t, func() bool { return up.Cancelled() == 1 })

			res, err := callTool(t.Context(), c, "slow", map[string]any{"ms": 1})
			if err != nil || text(t, res) != "done" {
				t.Fatalf("slow = %v, %v", res, err)
			}
			if n := up.Cancelled(); n != 1 {
				t.Errorf("Cancelled() = %d after a completed call (run %d)", n, i)
			}
		})
	}
}

func TestListChanged(t *testing.T) {
	up := StartT(t, Options{})
	// The standalone GET stream is how a legacy client hears about changes.
	c := connect(t, up.URL, legacyClient, transport.WithContinuousListening())
	changed := &notes{want: string(mcp.MethodNotificationToolsListChanged)}
	c.OnNotification(changed.handle)

	up.AddTool("added")
	changed.wait(t, 1)
	res, err := callTool(t.Context(), c, "added", nil)
	if err != nil || text(t, res) != "added" {
		t.Fatalf("added = %v, %v", res, err)
	}

	up.SetDescription("echo", "drifted")
	changed.wait(t, 2)
	up.RemoveTool("added")
	changed.wait(t, 3)

	tools, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name == "added" {
			t.Error("removed tool still listed")
		}
		if tool.Name == "echo" && tool.Description != "drifted" {
			t.Errorf("echo description = %q", tool.Description)
		}
	}
}

func TestListChangedModern(t *testing.T) {
	up := StartT(t, Options{})
	c := connect(t, up.URL, modernClient)
	changed := &notes{want: string(mcp.MethodNotificationToolsListChanged)}
	c.OnNotification(changed.handle)
	stop, err := c.ListenAsync(t.Context(), mcp.SubscriptionFilter{ToolsListChanged: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	// The listen stream may not be open yet; keep changing until one lands.
	eventually(t, func() bool {
		up.AddTool("added")
		up.RemoveTool("added")
		changed.mu.Lock()
		defer changed.mu.Unlock()
		return len(changed.got) > 0
	})
}

func TestKill(t *testing.T) {
	for _, era := range []clientEra{legacyClient, modernClient} {
		t.Run(era.String(), func(t *testing.T) {
			up := StartT(t, Options{})
			c := connect(t, up.URL, era)
			up.Kill()
			if _, err := callTool(t.Context(), c, "echo", map[string]any{"message": "x"}); err == nil {
				t.Fatal("call succeeded after Kill")
			}
			fresh := newClient(t, up.URL, era)
			if err := initialize(t.Context(), fresh); err == nil {
				t.Fatal("initialize succeeded after Kill")
			}
		})
	}
}

func TestSetDelay(t *testing.T) {
	up := StartT(t, Options{})
	c := connect(t, up.URL, modernClient)
	up.SetDelay(100 * time.Millisecond)

	start := time.Now()
	if _, err := callTool(t.Context(), c, "echo", map[string]any{"message": "x"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("delayed call took %v", d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := callTool(ctx, c, "echo", map[string]any{"message": "x"}); err == nil {
		t.Error("call outlived its context while delayed")
	}

	up.SetDelay(0)
	if _, err := callTool(t.Context(), c, "echo", map[string]any{"message": "x"}); err != nil {
		t.Fatal(err)
	}
}

// tee records the raw bodies of the responses an mcp-go client receives,
// since its types drop the members the rewrite adds.
type tee struct {
	mu     sync.Mutex
	bodies []string
}

func (tt *tee) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	tt.mu.Lock()
	tt.bodies = append(tt.bodies, resp.Header.Get("Content-Type")+"\n"+string(body))
	tt.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (tt *tee) last() string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.bodies[len(tt.bodies)-1]
}

func TestRewrites(t *testing.T) {
	for _, era := range []clientEra{legacyClient, modernClient} {
		t.Run(era.String(), func(t *testing.T) {
			up := StartT(t, Options{})
			raw := &tee{}
			c := connect(t, up.URL, era, transport.WithHTTPBasicClient(&http.Client{Transport: raw}))

			if _, err := c.ListTools(t.Context(), mcp.ListToolsRequest{}); err != nil {
				t.Fatal(err)
			}
			if got := raw.last(); !strings.Contains(got, ExtensionToolMember+`,"name":"extension"`) {
				t.Errorf("tools/list lacks %s: %s", ExtensionToolMember, got)
			}
			res, err := callTool(t.Context(), c, "extension", nil)
			if err != nil || text(t, res) != "extension" {
				t.Fatalf("extension = %v, %v", res, err)
			}
			if got := raw.last(); !strings.HasPrefix(got, "application/json") || !strings.Contains(got, `"result":{`+ExtensionResultMember+",") {
				t.Errorf("extension response: %s", got)
			}
			if _, err := callTool(t.Context(), c, "rich", nil); err != nil {
				t.Fatal(err)
			}
			got := raw.last()
			if !strings.Contains(got, `"result":{"isError":false,`) || !strings.Contains(got, string(richStructured)) {
				t.Errorf("rich response: %s", got)
			}
		})
	}
}

// TestRewriteSSE covers a response mcp-go sends as an SSE stream: once a
// legacy session has received a notification, mcp-go answers all of its
// requests that way.
func TestRewriteSSE(t *testing.T) {
	up := StartT(t, Options{})
	raw := &tee{}
	c := connect(t, up.URL, legacyClient, transport.WithHTTPBasicClient(&http.Client{Transport: raw}))
	req := mcp.CallToolRequest{}
	req.Params.Name = "progress"
	req.Params.Arguments = map[string]any{"steps": 1}
	req.Params.Meta = &mcp.Meta{ProgressToken: 7}
	if _, err := c.CallTool(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := callTool(t.Context(), c, "extension", nil); err != nil {
		t.Fatal(err)
	}
	got := raw.last()
	if !strings.HasPrefix(got, "text/event-stream") || !strings.Contains(got, `"result":{`+ExtensionResultMember+",") {
		t.Errorf("extension response: %s", got)
	}
}

func TestRichDefinition(t *testing.T) {
	up := StartT(t, Options{})
	c := connect(t, up.URL, modernClient)
	tools, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tools.Tools, func(tool mcp.Tool) bool { return tool.Name == "rich" })
	if i < 0 {
		t.Fatal("rich not listed")
	}
	def, err := json.Marshal(tools.Tools[i])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"$defs"`, `"additionalProperties":false`, `"enum":["fast","thorough","gründlich"]`,
		`"outputSchema"`, `"com.example/flags":["a",1,null,true]`, `"idempotentHint":true`, `"openWorldHint":false`, "日本語"} {
		if !strings.Contains(string(def), want) {
			t.Errorf("rich definition lacks %s: %s", want, def)
		}
	}
}

func TestAnnotations(t *testing.T) {
	up := StartT(t, Options{ExtraTools: 3})
	c := connect(t, up.URL, legacyClient)
	tools, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	readOnly := map[string]bool{}
	for _, tool := range tools.Tools {
		readOnly[tool.Name] = tool.Annotations.ReadOnlyHint != nil && *tool.Annotations.ReadOnlyHint
		if tool.Name == "delete_everything" && (tool.Annotations.ReadOnlyHint != nil || !*tool.Annotations.DestructiveHint) {
			t.Errorf("delete_everything annotations = %+v", tool.Annotations)
		}
	}
	for _, name := range []string{"echo", "rich", "extension", LongToolName, "tool-000", "tool-002"} {
		if !readOnly[name] {
			t.Errorf("%s is not read-only", name)
		}
	}
	if len(tools.Tools) != 9+3 {
		t.Errorf("%d tools, want 12", len(tools.Tools))
	}
}

// TestNoGoroutineLeak closes the server while clients still hold streams
// and a call open, then checks that nothing of the server outlives Close.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	busyServerClose(t)
	http.DefaultClient.CloseIdleConnections()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// busyServerClose opens a legacy GET stream, a 2026-07-28 listen stream and
// a slow call, closes the server under them, then closes the clients.
func busyServerClose(t *testing.T) {
	up, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	legacy := connect(t, up.URL, legacyClient, transport.WithContinuousListening())
	modern := connect(t, up.URL, modernClient)
	stop, err := modern.ListenAsync(t.Context(), mcp.SubscriptionFilter{ToolsListChanged: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := callTool(t.Context(), legacy, "slow", map[string]any{"ms": 60_000})
		slowDone <- err
	}()
	eventually(t, func() bool { return received(up, `"slow"`) && received(up, "subscriptions/listen") })

	up.Close()
	if err := <-slowDone; err == nil {
		t.Error("slow call succeeded across Close")
	}
	stop()
	_ = legacy.Close()
	_ = modern.Close()
}

// received reports whether up received a request whose body contains text.
func received(up *Server, text string) bool {
	return slices.ContainsFunc(up.Requests(), func(r Request) bool {
		return bytes.Contains(r.Body, []byte(text))
	})
}
