package demo

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves a demo server at /mcp on ln until ctx ends, then shuts down.
func Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/mcp", Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	return shutdown(srv)
}

// shutdown lets requests in flight finish. A client's open event stream
// never finishes by itself, so after a grace period it is cut.
func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return srv.Close()
	}
	return err
}
