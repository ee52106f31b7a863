// Command demo-upstream serves the demo MCP server over Streamable HTTP, as
// an upstream for mcpgate's quickstart:
//
//	go run ./examples/demo-upstream -listen 127.0.0.1:9101
//
// The server is then at http://127.0.0.1:9101/mcp. It stops on SIGINT or
// SIGTERM.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgate/caddy-mcpgate/examples/demo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9101", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen); err != nil {
		log.Fatal(err)
	}
}

// run serves the demo at /mcp on addr until ctx ends.
func run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("demo MCP server at http://%s/mcp", ln.Addr())
	return demo.Serve(ctx, ln)
}
