package mcpgate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestAdminListStatusFilter filters the admin list by status group on a
// real Caddy, through real consents: a shared connector is grouped by its
// connection; a per-user one is active by itself, and grouped by a user's
// connection under ?user=; a disabled one is inactive; an unknown group
// is refused, naming the groups.
func TestAdminListStatusFilter(t *testing.T) {
	startOAuthStack(t)
	mustList := func(query string, want ...string) map[string]map[string]any {
		t.Helper()
		out := mustAdmin(t, 200, "GET", "/mcpgate/connectors"+query, "")
		if ids := adminIDs(out); !slices.Equal(ids, want) {
			t.Fatalf("GET /mcpgate/connectors%s: %v, want %v", query, ids, want)
		}
		byID := map[string]map[string]any{}
		for _, c := range out["connectors"].([]any) {
			byID[c.(map[string]any)["id"].(string)] = c.(map[string]any)
		}
		return byID
	}
	all := mustList("", "notes", "team")
	if all["notes"]["group"] != "active" || all["team"]["group"] != "inactive" {
		t.Fatalf("groups before any consent: notes %v, team %v", all["notes"]["group"], all["team"]["group"])
	}
	mustList("?status=all", "notes", "team")
	mustList("?status=active", "notes")
	mustList("?status=inactive", "team")
	mustList("?status=needs_attention")
	mustList("?status=inactive&user=alice", "notes", "team")

	consent(t, "alice", "notes")
	notes := mustList("?status=active&user=alice", "notes")["notes"]
	if conn, _ := notes["connection"].(map[string]any); conn["state"] != "active" {
		t.Fatalf("alice's notes under ?user=alice: %v", notes)
	}
	mustList("?status=inactive&user=bob", "notes", "team")
	if conn := mustList("?status=active", "notes")["notes"]["connection"]; conn != nil {
		t.Fatalf("a per-user connector shows a connection with no user named: %v", conn)
	}

	consent(t, "alice", "team") // alice is team's admin: a shared consent
	mustList("?status=active", "notes", "team")
	mustList("?status=inactive")

	// Disabled, a connector is inactive whatever its tokens, for the
	// admin and for its users alike.
	mustAdmin(t, 200, "PATCH", "/mcpgate/connectors/team", `{"enabled":false}`)
	mustList("?status=inactive", "team")
	mustList("?status=active&user=alice", "notes")
	if st := statusOf(t, "alice", "team"); st["group"] != "inactive" || st["status_label"] != "Disabled" {
		t.Errorf("alice's disabled team: %v", st)
	}

	for _, bad := range []string{"ready", "Active", "needs-attention"} {
		status, out := admin(t, "GET", "/mcpgate/connectors?status="+bad, "")
		msg, _ := out["error"].(string)
		if want := fmt.Sprintf("unknown status filter %q: use all, active, needs_attention or inactive", bad); status != 400 || !strings.Contains(msg, want) {
			t.Errorf("?status=%s: %d %q, want 400 saying %q", bad, status, msg, want)
		}
	}
}
