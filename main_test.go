package mcpgate_test

import (
	"os"
	"testing"

	"github.com/mcpgate/caddy-mcpgate/internal/caddyenv"
)

func TestMain(m *testing.M) { os.Exit(caddyenv.Run(m)) }
