package mcpgate_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/caddy-mcpgate/internal/agenttest"
	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// listener is an agent of one user in one era, with its notification
// stream open on /mcp.
type listener struct {
	user, era string
	notes     *agenttest.Notes
	tools     func() []string
}

// listeners opens one listening agent for each user in each era.
func listeners(t *testing.T, users ...string) []*listener {
	t.Helper()
	var out []*listener
	for _, user := range users {
		for _, era := range agenttest.Eras {
			l := &listener{user: user, era: era.Name, notes: new(agenttest.Notes)}
			c := agenttest.Listen(t, site+"/mcp", map[string]string{"Authorization": basic(user)}, era, l.notes)
			l.tools = func() []string { return agenttest.ToolNames(t, c) }
			out = append(out, l)
		}
	}
	return out // each stream is open: Listen returns once the gateway holds it
}

// told waits until each of ls has heard of want tool list changes, then
// a while longer, and fails unless each heard of exactly want: none more,
// later or twice.
func told(t *testing.T, what string, want int, ls ...*listener) {
	t.Helper()
	for _, l := range ls {
		wait.Until(t, 10*time.Second, what+": "+l.user+"'s "+l.era+" agent told", func() bool { return l.notes.Tools() >= want })
	}
	time.Sleep(400 * time.Millisecond) // what would come twice, or to the wrong agent
	for _, l := range ls {
		if n := l.notes.Tools(); n != want {
			t.Errorf("%s: %s's %s agent heard of %d tool list changes, want %d", what, l.user, l.era, n, want)
		}
	}
}

// TestListChangedOnChange checks, on a real Caddy against real
// authorization servers, that agents with a notification stream open, in
// both eras, hear tools/list_changed whenever what they may use changes,
// and only then: a user's consent and disconnect tell that user's agents,
// whose next list has the tools or lacks them; a shared consent tells
// everyone; a runtime connector added through the admin API and a config
// reload tell every agent, once.
func TestListChangedOnChange(t *testing.T) {
	s := startOAuthStack(t)
	ls := listeners(t, "alice", "bob")
	alice, bob := ls[:2], ls[2:]
	for _, l := range ls {
		if names := l.tools(); slices.Contains(names, "notes_echo") || slices.Contains(names, "team_echo") {
			t.Fatalf("%s's %s agent lists %v before any consent", l.user, l.era, names)
		}
	}

	consent(t, "alice", "notes")
	told(t, "alice's consent", 1, alice...)
	told(t, "alice's consent", 0, bob...)
	for _, l := range alice {
		if !slices.Contains(l.tools(), "notes_echo") {
			t.Errorf("alice's %s agent does not list notes_echo after her consent", l.era)
		}
	}

	if resp, body := do(t, http.MethodPost, "/connectors/notes/disconnect", "alice", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d %s", resp.StatusCode, body)
	}
	told(t, "alice's disconnect", 2, alice...)
	told(t, "alice's disconnect", 0, bob...)
	for _, l := range alice {
		if slices.Contains(l.tools(), "notes_echo") {
			t.Errorf("alice's %s agent lists notes_echo after her disconnect", l.era)
		}
	}

	consent(t, "alice", "team") // shared: everyone's
	told(t, "the shared consent", 3, alice...)
	told(t, "the shared consent", 1, bob...)
	for _, l := range bob {
		if !slices.Contains(l.tools(), "team_echo") {
			t.Errorf("bob's %s agent does not list team_echo after the shared consent", l.era)
		}
	}

	extra := testupstream.StartT(t, testupstream.Options{Name: "extra"})
	mustAdmin(t, http.StatusCreated, "POST", "/mcpgate/connectors", `{"id":"extra","url":"`+extra.URL+`"}`)
	told(t, "a runtime connector", 4, alice...)
	told(t, "a runtime connector", 2, bob...)

	// A reload that takes team from bob: his agents, whose streams the
	// reload leaves open, are told, and list without it.
	config := strings.Replace(s.config, "\t\tgrant {\n\t\t\tsrc *\n\t\t\tconnectors notes team\n", "\t\tgrant {\n\t\t\tsrc *\n\t\t\tconnectors notes\n", 1)
	s.tester.InitServer(config, "caddyfile")
	told(t, "a reload", 5, alice...)
	told(t, "a reload", 3, bob...)
	for _, l := range bob {
		if slices.Contains(l.tools(), "team_echo") {
			t.Errorf("bob's %s agent lists team_echo after the reload took it from him", l.era)
		}
	}
}
