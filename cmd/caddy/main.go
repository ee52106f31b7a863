// Command caddy is Caddy with its standard modules and mcpgate, for
// `go run ./cmd/caddy` and `go build ./cmd/caddy` without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/caddy-mcpgate"
)

func main() {
	caddycmd.Main()
}
