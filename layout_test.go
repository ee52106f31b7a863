package mcpgate

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestCoreKnowsNoCaddy enforces the layout: the core packages are libraries
// a program without Caddy could use, and only the root wires them to Caddy.
func TestCoreKnowsNoCaddy(t *testing.T) {
	core := []string{"audit", "connectors", "grants", "mcpmux", "store", "oauthflow", "oauthflow/discovery", "oauthflow/egress", "web", "httpapi",
		"internal/strictjson", "internal/textcut", "internal/redact", "internal/inert"}
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

// TestCLIKnowsOnlyCaddyCommand enforces the CLI's place in the layout: it
// talks to the admin API through Caddy's command package and knows the
// API only by its JSON, so it imports no other Caddy package and never
// the root, which imports it (and would make a cycle).
func TestCLIKnowsOnlyCaddyCommand(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "./cli").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./cli: %v\n%s", err, out)
	}
	allowed := []string{"github.com/caddyserver/caddy/v2", "github.com/caddyserver/caddy/v2/cmd"}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/caddyserver/") && !slices.Contains(allowed, imp) || imp == "github.com/mcpgate/caddy-mcpgate" {
			t.Errorf("cli imports %s", imp)
		}
	}
}

// TestReadmeTestCommand holds the README's promise that one command on a
// fresh machine installs what the tests need and runs them all: the README
// names scripts/test, CI runs that same script, and the script installs
// each thing a test refuses to run without (the npm packages of the
// authorization server and of the conformance suite with its Node 22,
// Debian's chromium) before it tests every package.
func TestReadmeTestCommand(t *testing.T) {
	readme := readFile(t, "README.md")
	_, section, _ := strings.Cut(readme, "## Test it\n")
	_, block, _ := strings.Cut(section, "```sh\n")
	command, _, _ := strings.Cut(block, "```")
	if strings.TrimSpace(command) != "scripts/test" {
		t.Fatalf("the README's test command is %q, want scripts/test", command)
	}
	if ci := readFile(t, ".ci/run"); !strings.Contains(ci, "\nscripts/test\n") {
		t.Error(".ci/run does not run scripts/test, the README's test command")
	}
	script := readFile(t, "scripts/test")
	for _, want := range []string{
		"npm ci --prefix internal/testas",
		"npm ci --prefix internal/conformance",
		"apt-get install -y -qq --no-install-recommends chromium",
		"command -v chromium",
		"go test -race -count=1 \"$@\" ./...",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("scripts/test lacks %q", want)
		}
	}
	if info, err := os.Stat("scripts/test"); err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("scripts/test is not executable: %v", err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
