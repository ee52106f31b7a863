package mcpgate

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreKnowsNoCaddy enforces the layout: the core packages are libraries
// a program without Caddy could use, and only the root wires them to Caddy.
func TestCoreKnowsNoCaddy(t *testing.T) {
	core := []string{"audit", "connectors", "grants", "mcpmux", "store", "oauthflow", "oauthflow/discovery", "oauthflow/egress", "web", "internal/strictjson"}
	for _, pkg := range core {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/caddyserver/") || dep == "github.com/mcpgate/caddy-mcpgate" {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
