package cluster

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Ports are a process's fixed loopback ports.
type Ports struct {
	// HTTP is the site's port.
	HTTP int
	// Admin is Caddy's admin endpoint's port.
	Admin int
}

// The fixed ports: no other test of the repository uses 31xx or 96xx.
// Fixed, as the root package's tests' are, rather than found free: the
// instances, the balancer and public_url must agree on them before any
// process starts, and a port found free can be taken before the process
// it was meant for binds it.
var (
	instancePorts = []Ports{{9601, 3101}, {9602, 3102}, {9603, 3103}}
	balancerPorts = Ports{9604, 3104}
)

// Passwords are the basic_auth passwords of the test users.
var Passwords = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

// Connectors are the connectors' upstream URLs, as the instances'
// Caddyfile declares them.
type Connectors struct {
	// Notes is an OAuth connector, registered by DCR, with per-user
	// consent.
	Notes string
	// Race is a second OAuth connector of the same kind, at its own
	// authorization server, whose first registration the race test
	// watches.
	Race string
	// Wiki is a connector without credentials.
	Wiki string
}

// instanceConfig is the one Caddyfile of every instance. Its ports come
// from the environment ({$…} is substituted when the file is parsed), so
// that the three run the very same file. The PostgreSQL DSN and the seal
// key come in through {env.*}, as an operator would pass them.
func instanceConfig(public string, c Connectors, users string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:{$MCPGATE_ADMIN_PORT}
	default_bind 127.0.0.1
	auto_https off
	persist_config off
	grace_period 1s
	mcpgate {
		public_url %[1]s
		storage postgres {
			dsn {env.MCPGATE_PG_DSN}
		}
		seal_key {env.MCPGATE_SEAL_KEY}
		connector notes {
			url %[2]s
			auth oauth {
				registration dcr
				insecure_loopback
			}
		}
		connector race {
			url %[3]s
			auth oauth {
				registration dcr
				insecure_loopback
			}
		}
		connector wiki {
			url %[4]s
		}
		# extra is a runtime connector that a test adds.
		grant {
			src *
			connectors notes race wiki extra
		}
	}
}
http://127.0.0.1:{$MCPGATE_HTTP_PORT} {
	basic_auth {
%[5]s	}
	mcpgate
}
`, public, c.Notes, c.Race, c.Wiki, users)
}

// balancerConfig is the load balancer's Caddyfile: Caddy's own
// reverse_proxy, round robin over the instances. A request whose
// instance cannot be reached is tried at the next one for up to
// lb_try_duration, and the passive health check keeps an instance that
// failed once out of rotation for fail_duration, so that a dead instance
// costs a call no more than one refused dial. Responses are flushed at
// once: MCP answers may be event streams.
func balancerConfig(instances []string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	default_bind 127.0.0.1
	auto_https off
	persist_config off
	grace_period 1s
}
http://127.0.0.1:%[2]d {
	reverse_proxy %[3]s {
		lb_policy round_robin
		lb_try_duration 10s
		lb_try_interval 100ms
		fail_duration 30s
		max_fails 1
		flush_interval -1
	}
}
`, balancerPorts.Admin, balancerPorts.HTTP, strings.Join(instances, " "))
}

// basicAuthUsers is the body of a basic_auth block with Passwords.
func basicAuthUsers() (string, error) {
	var users strings.Builder
	for _, user := range slices.Sorted(maps.Keys(Passwords)) {
		// The lowest cost: the hashes guard test passwords, and every
		// request pays for one.
		h, err := bcrypt.GenerateFromPassword([]byte(Passwords[user]), bcrypt.MinCost)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&users, "\t\t%s %s\n", user, h)
	}
	return users.String(), nil
}
