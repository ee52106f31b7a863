package mcpgate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wiring are the packages that may know Caddy: the root, which wires the
// core to it; the CLI, through Caddy's command package; the programs that
// build or run a Caddy; and the test helper that starts one. Every other
// package of the module, a new one included, is core.
var wiring = []string{"", "cli", "cmd/caddy", "examples/quickstart", "internal/sitetest"}

// TestCoreKnowsNoCaddy enforces the layout: the core packages are libraries
// a program without Caddy could use, and only the root wires them to Caddy.
// No package imports the root but the programs that build a Caddy.
func TestCoreKnowsNoCaddy(t *testing.T) {
	const module = "github.com/mcpgate/caddy-mcpgate"
	out, err := exec.Command("go", "list", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	core := 0
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if slices.Contains(wiring, rel) {
			continue
		}
		core++
		deps, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, deps)
		}
		for _, dep := range strings.Fields(string(deps)) {
			if strings.HasPrefix(dep, "github.com/caddyserver/") || dep == module {
				t.Errorf("%s depends on %s", rel, dep)
			}
		}
	}
	if core < 15 {
		t.Errorf("only %d core packages were checked: is go list finding the module?", core)
	}
}

// TestRootIsWiring holds the root package to its job: every file of it
// imports Caddy (the rest belongs in a core package), and none of it
// reads or writes the store by key, which is the registry's and the OAuth
// manager's business.
func TestRootIsWiring(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	rawKey := regexp.MustCompile(`\.(sealed|db)\.(Get|Put|Delete|List)\(`)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src := readFile(t, name)
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(f.Imports, func(imp *ast.ImportSpec) bool {
			return strings.HasPrefix(imp.Path.Value, `"github.com/caddyserver/caddy/v2`)
		}) {
			t.Errorf("%s imports no Caddy package: it belongs in a core package", name)
		}
		if loc := rawKey.FindStringIndex(src); loc != nil {
			t.Errorf("%s reads or writes the store by key: %q", name, src[loc[0]:loc[1]])
		}
	}
}

// TestCLIKnowsOnlyCaddyCommand enforces the CLI's place in the layout: it
// talks to the admin API through Caddy's command package and knows the
// API only by its JSON, so it imports no other Caddy package and no
// package of this module: not the root, which imports it (a cycle), and
// no core package, whose types would tie the CLI to the server's build.
func TestCLIKnowsOnlyCaddyCommand(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "./cli").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./cli: %v\n%s", err, out)
	}
	allowed := []string{"github.com/caddyserver/caddy/v2", "github.com/caddyserver/caddy/v2/cmd"}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/caddyserver/") && !slices.Contains(allowed, imp) || strings.HasPrefix(imp, "github.com/mcpgate/caddy-mcpgate") {
			t.Errorf("cli imports %s", imp)
		}
	}
}

// TestReadmeTestCommand holds the README's promise that one command on a
// fresh machine installs what the tests need and runs them all: the README
// names scripts/test, CI runs that same script, and the script installs
// each thing a test refuses to run without (the npm packages of the
// authorization server and of the conformance suite with its Node 22,
// Debian's chromium and postgresql) before it tests every package.
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
		"apt-get install -y -qq --no-install-recommends postgresql",
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
