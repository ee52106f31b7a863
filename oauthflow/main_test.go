package oauthflow

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind, except the
// private PostgreSQL server that pgtest shares across the binary's tests
// and stops only when the binary exits.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/mcpgate/caddy-mcpgate/internal/pgtest.(*Server).run.func1"))
}
