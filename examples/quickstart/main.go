// Command quickstart runs mcpgate on its embedded quickstart Caddyfile, in
// front of the demo MCP server, with nothing else to set up:
//
//	go run ./examples/quickstart
//
// Agents then reach every demo tool at http://127.0.0.1:8080/mcp, named
// demo_<tool>. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mcpgate/caddy-mcpgate"
	"github.com/mcpgate/caddy-mcpgate/examples/demo"
)

//go:embed Caddyfile
var caddyfile []byte

func main() {
	demoAddr := flag.String("demo", "127.0.0.1:9101", "address of the demo MCP server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *demoAddr); err != nil {
		log.Fatal(err)
	}
}

// run serves the demo upstream and the gateway until ctx ends.
func run(ctx context.Context, demoAddr string) error {
	ln, err := net.Listen("tcp", demoAddr)
	if err != nil {
		return fmt.Errorf("demo server: %w", err)
	}
	go demo.Serve(ctx, ln)

	os.Setenv("DEMO_URL", "http://"+ln.Addr().String()+"/mcp")
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Printf("Caddyfile: %s", w.String())
	}
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	defer caddy.Stop()
	log.Printf("mcpgate serves the demo connector at http://%s/mcp", envOr("MCPGATE_ADDR", "127.0.0.1:8080"))
	<-ctx.Done()
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
