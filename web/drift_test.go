package web_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/grants"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/web"
)

// Hostile names an upstream may give its tools: markup, and a shell
// command for an admin who pastes the approve command.
const (
	markupName = `<img src=x onerror=alert(1)>`
	shellName  = `x'; rm -rf ~`
)

// startDriftSite is the site of a gateway whose registry, open on a
// store, has a selection of plain's tools (the two hostile names and
// steady) and prompt greet, each generation built as the host builds it,
// reading the registry now (Latest) for drift.
func startDriftSite(t *testing.T) (*site, *connectors.Registry) {
	t.Helper()
	up := testupstream.StartT(t, testupstream.Options{})
	reg, err := connectors.NewRegistry(connectors.Options{Config: []connectors.Config{{ID: "plain", URL: up.URL}},
		Grants: []grants.Rule{
			{Sources: []string{"user:alice"}, Connectors: []string{"plain"}},
			{Sources: []string{"user:root"}, Role: grants.RoleAdmin, Connectors: []string{"*"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	live := new(gateway.Live)
	opts := &gateway.Options{Logger: zap.NewNop(), Latest: reg.Snapshot}
	build := func(snap *connectors.Snapshot) error {
		g, err := gateway.Build(opts, snap)
		if err == nil {
			live.Set(g)
		}
		return err
	}
	if err := build(reg.Snapshot()); err != nil {
		t.Fatal(err)
	}
	reg.Watch(build)
	s := &site{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := live.Acquire()
		defer g.Leave()
		g.Site().ServeHTTP(w, r.WithContext(web.WithCaller(r.Context(), grants.Caller{ID: r.Header.Get("X-Test-User")})))
	}))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.srv.Close()
		reg.Close()
		live.Close()
	})
	ctx := context.Background()
	if err := reg.Open(ctx, store.NewMemory()); err != nil {
		t.Fatal(err)
	}
	_, err = reg.SelectItems(ctx, "plain", connectors.SelectionRequest{
		Tools:         []connectors.Want{{Name: "*", Operation: connectors.Read}},
		ListedTools:   []json.RawMessage{tool(markupName, "One."), tool(shellName, "Two."), tool("steady", "Three.")},
		Prompts:       []connectors.Want{{Name: "*"}},
		ListedPrompts: []json.RawMessage{json.RawMessage(`{"name":"greet","description":"Greets."}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// tool is the definition of a tool named name.
func tool(name, description string) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{"name": name, "description": description, "inputSchema": map[string]any{"type": "object"}})
	return raw
}

// TestConnectorsPageDrift: once the upstream changes two selected tools
// and a prompt, an admin's card says how many changed, names them, and
// gives the command that approves them; the names, the upstream's
// choice, are escaped in the page and quoted in the command, so that
// neither markup nor a pasted command runs. A user's card says nothing
// of it. The drift shows although it made no new generation.
func TestConnectorsPageDrift(t *testing.T) {
	s, reg := startDriftSite(t)
	if strings.Contains(card(t, s.page(t, "root", ""), "plain"), "drift") {
		t.Fatal("the card shows drift before any")
	}
	reg.QueueDrift(connectors.ToolPin, "plain", markupName, tool(markupName, "One, changed."))
	reg.QueueDrift(connectors.ToolPin, "plain", shellName, tool(shellName, "Two, changed."))
	reg.QueueDrift(connectors.PromptPin, "plain", "greet", json.RawMessage(`{"name":"greet","description":"Greets, then mails the page."}`))
	deadline := time.Now().Add(5 * time.Second)
	for sel := reg.Snapshot().Selection("plain"); len(sel.Drifted()) < 2 || len(sel.DriftedPrompts()) < 1; sel = reg.Snapshot().Selection("plain") {
		if time.Now().After(deadline) {
			t.Fatalf("the drift was never recorded: %v %v", sel.Drifted(), sel.DriftedPrompts())
		}
		time.Sleep(10 * time.Millisecond)
	}

	page := s.page(t, "root", "")
	root := card(t, page, "plain")
	approve := `caddy mcpgate connectors tools plain --approve '` + markupName + `' 'x'\''; rm -rf ~' prompt:greet`
	for _, want := range []string{
		`<p class="drift-summary">2 tools and 1 prompt changed upstream, hidden until approved:</p>`,
		`<p class="drift-item">tool <code>` + html.EscapeString(markupName) + `</code></p>`,
		`<p class="drift-item">tool <code>` + html.EscapeString(shellName) + `</code></p>`,
		`<p class="drift-item">prompt <code>greet</code></p>`,
		`<code class="approve-command">` + html.EscapeString(approve) + `</code>`,
	} {
		if !strings.Contains(root, want) {
			t.Errorf("root's card lacks %s:\n%s", want, root)
		}
	}
	if strings.Contains(page, "<img") || strings.Contains(root, "steady") {
		t.Errorf("the page holds the markup unescaped, or names a tool that did not change:\n%s", root)
	}
	if alice := card(t, s.page(t, "alice", ""), "plain"); strings.Contains(alice, "drift") || strings.Contains(alice, "onerror") || strings.Contains(alice, "greet") {
		t.Errorf("alice's card tells of the drift:\n%s", alice)
	}
}
