// Command upstream serves N testupstream MCP servers on loopback in a
// process of their own, so that a benchmark can measure the gateway's CPU
// apart from theirs. It prints {"urls": [...]} on one line of stdout once
// they listen, and runs until it is signalled (or, with -exit-on-eof,
// until its stdin closes).
//
//	go run ./bench/upstream -n 10
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

func main() {
	n := flag.Int("n", 1, "how many servers to start")
	extra := flag.Int("extra-tools", 0, "extra trivial tools per server, to make tools/list larger")
	exitOnEOF := flag.Bool("exit-on-eof", false, "also exit when stdin closes, as when the parent dies")
	flag.Parse()
	servers, err := start(*n, *extra)
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	if err := announce(servers); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	waitForEnd(*exitOnEOF)
}

// start starts n servers named up0, up1, ... without request recording.
func start(n, extra int) ([]*testupstream.Server, error) {
	var servers []*testupstream.Server
	for i := range n {
		s, err := testupstream.Start(testupstream.Options{Name: fmt.Sprintf("up%d", i), NoRecord: true, ExtraTools: extra})
		if err != nil {
			return servers, err
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// announce prints the servers' URLs as one JSON line.
func announce(servers []*testupstream.Server) error {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL
	}
	return json.NewEncoder(os.Stdout).Encode(map[string][]string{"urls": urls})
}

// waitForEnd returns on SIGINT or SIGTERM or, when onEOF is set, when
// stdin reaches EOF: a parent that dies without signalling still closes
// the pipe.
func waitForEnd(onEOF bool) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	eof := make(chan struct{})
	if !onEOF {
		<-ctx.Done()
		return
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
}
