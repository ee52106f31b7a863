package cluster

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
)

// caddyPackage is the program every instance runs: Caddy with its
// standard modules and mcpgate.
const caddyPackage = "github.com/mcpgate/caddy-mcpgate/cmd/caddy"

// Build builds caddyPackage into dir and returns the binary's path. It
// builds with the race detector when the calling test binary has it, so
// that the instances' own races fail the test too and the build reuses the
// packages the test run compiled. A test binary builds once, in TestMain.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	// Named by its import path, the package builds from any directory
	// inside the module, this package's included.
	if out, err := exec.Command("go", append(args, caddyPackage)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", caddyPackage, err, out)
	}
	return bin, nil
}

// raceEnabled reports whether the running binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(info.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
}
