package mcpgate

// The `caddy mcpgate …` command lives in package cli, which registers it
// with Caddy when imported. xcaddy builds import only this root package of
// the module, so the root imports cli to bring the command into every
// caddy binary built with mcpgate. (cli imports nothing of the root.)
import _ "github.com/mcpgate/caddy-mcpgate/cli"
