package conformance

import (
	"os"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/caddyenv"
)

// TestMain gives the Caddy these tests run its own data directory.
func TestMain(m *testing.M) { os.Exit(caddyenv.Run(m)) }
