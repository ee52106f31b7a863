// Package sitetest helps tests that run a real Caddy site for the gateway:
// loading its config, its basic_auth users, and waiting for what the site
// does in the background.
package sitetest

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgate/caddy-mcpgate/internal/wait"
)

// loadTimeout is how long a test waits for Caddy to load its config. A
// load stops the mcpgate of the config before, closing its store, and
// starts the next one with its own; on a loaded 2-core machine that
// outlasts caddytest's default of 5 s.
const loadTimeout = 60 * time.Second

// NewTester is caddytest's tester for the Caddy whose admin API listens on
// adminPort (0: caddytest's default, 2999), waiting loadTimeout for a
// config load.
func NewTester(t testing.TB, adminPort int) *caddytest.Tester {
	return caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort, LoadRequestTimeout: loadTimeout})
}

// BasicAuthUsers is the body of a Caddyfile basic_auth block with the
// users of passwords, indented for a site block's directive.
func BasicAuthUsers(t testing.TB, passwords map[string]string) string {
	t.Helper()
	var users strings.Builder
	for _, user := range slices.Sorted(maps.Keys(passwords)) {
		// The lowest cost: the hashes guard test passwords, and every
		// login pays for them.
		h, err := bcrypt.GenerateFromPassword([]byte(passwords[user]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "\t\t\t%s %s\n", user, h)
	}
	return users.String()
}

// Basic is the Authorization header of user with password.
func Basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// Eventually waits up to 10 s for cond, and fails t saying what it waited
// for if cond never holds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	wait.Until(t, 10*time.Second, what, cond)
}
