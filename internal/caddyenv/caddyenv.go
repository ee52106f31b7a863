// Package caddyenv gives a test binary that runs Caddy its own data and
// config directories, so that test packages running at the same time never
// share mcpgate's database (Badger locks it) or Caddy's autosave.
package caddyenv

import (
	"fmt"
	"os"
	"testing"
)

// Run runs m's tests with XDG_DATA_HOME and XDG_CONFIG_HOME in a fresh
// temporary directory, removed afterwards, and returns the exit code.
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "caddyenv")
	if err != nil {
		fmt.Fprintln(os.Stderr, "caddyenv:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_DATA_HOME", dir+"/data")
	os.Setenv("XDG_CONFIG_HOME", dir+"/config")
	return m.Run()
}
