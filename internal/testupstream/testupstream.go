// Package testupstream runs real mcp-go MCP servers on loopback for tests and benchmarks.
//
// Every instance serves the same catalog (see catalog.go), speaks the
// Streamable HTTP transport at /mcp, and can be restricted to one protocol
// era, put behind a bearer token, an API-key header or a guard (such as
// testas's OAuth resource-server check), slowed down, or killed, so that the
// gateway's tests meet a real SDK rather than a mock.
package testupstream

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// Era selects which MCP protocol eras a Server accepts.
type Era int

const (
	// BothEras serves legacy and 2026-07-28 clients (mcp-go default).
	BothEras Era = iota
	// LegacyOnly serves the initialize handshake only: server/discover
	// fails, so a client falls back to initialize, and 2026-07-28 requests
	// are rejected.
	LegacyOnly
	// ModernOnly serves 2026-07-28 only: initialize fails with a JSON-RPC
	// error.
	ModernOnly
)

// String returns the era's name, for test names.
func (e Era) String() string {
	switch e {
	case BothEras:
		return "both"
	case LegacyOnly:
		return "legacy-only"
	case ModernOnly:
		return "modern-only"
	}
	return fmt.Sprintf("Era(%d)", int(e))
}

// Options configures a Server. The zero value is a usable default.
type Options struct {
	// Name is the server name and the distinguishing part of its resource
	// URIs. Default "up".
	Name string
	// Era restricts the protocol eras served. Default BothEras.
	Era Era
	// BearerToken, when set, makes every HTTP request carry
	// "Authorization: Bearer <token>" or get 401 with a WWW-Authenticate:
	// Bearer challenge.
	BearerToken string
	// HeaderName and HeaderValue, when HeaderName is set, make every request
	// carry that header with that value or get 401.
	HeaderName, HeaderValue string
	// ExtraTools adds tools tool-000..tool-NNN (readOnlyHint true, trivial)
	// to make tools/list larger, for benchmarks.
	ExtraTools int
	// NoRecord disables request recording, so that benchmarks do not pay
	// for copying headers and keeping every body.
	NoRecord bool
}

// Request is one HTTP request the server received.
type Request struct {
	// Method and Path are the request line's.
	Method, Path string
	// Header is every header the server received.
	Header http.Header
	// Body is the whole body.
	Body []byte
}

// Server is a running upstream. Its methods are safe for concurrent use.
type Server struct {
	// URL is the MCP endpoint, e.g. http://127.0.0.1:41234/mcp.
	URL string
	// MCP is the mcp-go server behind the endpoint, for tests that need
	// more than the helpers below.
	MCP *server.MCPServer

	opts       Options
	streamable *server.StreamableHTTPServer
	httpSrv    *http.Server
	served     chan struct{} // closed when httpSrv.Serve returns

	// life guards closed; handlers counts requests in flight so that Close
	// can wait for them. A handler joins under the read lock and Close sets
	// closed under the write lock, so no Add can race the final Wait.
	life     sync.RWMutex
	closed   bool
	handlers sync.WaitGroup

	recMu    sync.Mutex
	requests []Request

	delay     atomic.Int64 // time.Duration
	cancelled atomic.Int64
	delivered deliveries // the progress tool's notifications on their way out
	subs      subscribers
	guard     atomic.Pointer[func(http.Handler) http.Handler]
}

// Start starts a Server listening on 127.0.0.1 on a free port.
func Start(opts Options) (*Server, error) {
	if opts.Name == "" {
		opts.Name = "up"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testupstream: listening: %w", err)
	}
	s := &Server{
		URL:    "http://" + ln.Addr().String() + "/mcp",
		opts:   opts,
		served: make(chan struct{}),
	}
	s.delivered.noLog = opts.NoRecord
	s.MCP = newMCPServer(opts, &s.cancelled, &s.delivered, &s.subs)
	s.streamable = server.NewStreamableHTTPServer(s.MCP, transportOptions(opts.Era)...)
	s.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: 10 * time.Second,
		// Kill and Close cut connections mid-response on purpose; the
		// resulting write errors are expected, not worth a log line.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(s.served)
		_ = s.httpSrv.Serve(ln)
	}()
	return s, nil
}

// StartT starts a Server, stops the test if it cannot, and closes the
// Server when the test ends.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// transportOptions maps an Era onto mcp-go's transport options. ModernOnly
// needs more than an option: see refuseLegacy.
func transportOptions(era Era) []server.StreamableHTTPOption {
	opts := []server.StreamableHTTPOption{
		server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)),
	}
	switch era {
	case LegacyOnly:
		// mcp-go answers a 2026-07-28 request, server/discover included,
		// with UnsupportedProtocolVersion listing only these versions, and
		// the client then falls back to initialize.
		opts = append(opts, server.WithStreamableHTTPProtocolVersions(legacyVersions...))
	case ModernOnly:
		opts = append(opts, server.WithStreamableHTTPProtocolVersions(modernVersions...))
	}
	return opts
}

// Close stops the server, ends every connection and waits until all of its
// goroutines have returned. It is safe to call more than once and after
// Kill.
func (s *Server) Close() {
	s.life.Lock()
	s.closed = true
	s.life.Unlock()
	// Ending the sessions first lets long-lived GET streams return cleanly
	// rather than fail on a closed connection.
	s.streamable.CloseSessions(context.Background())
	_ = s.httpSrv.Close()
	<-s.served
	s.handlers.Wait()
}

// Kill closes the listener and every connection abruptly. The server is
// dead from then on: new requests get connection refused.
func (s *Server) Kill() {
	// Close reports only listener errors, after which the server is as
	// dead as after a clean close.
	_ = s.httpSrv.Close()
}

// SetDelay delays every HTTP response by d, or until the request is
// cancelled, to simulate a slow upstream. Zero removes the delay.
func (s *Server) SetDelay(d time.Duration) {
	s.delay.Store(int64(d))
}

// Cancelled reports how many calls to the slow tool saw their context
// cancelled.
func (s *Server) Cancelled() int {
	return int(s.cancelled.Load())
}

// Requests returns a copy of every request received so far, in arrival
// order, including the ones that were refused.
func (s *Server) Requests() []Request {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

// SetGuard wraps the handling of every later request in guard, e.g. an
// OAuth resource-server check such as testas.AS.Protect, or removes the
// guard when it is nil. It is a method rather than an Option because a guard
// usually needs URL, which is known only once the Server listens. The guard
// sees each request after it is recorded and before the checks that Options
// configure, on any path, so that it can serve documents of its own.
func (s *Server) SetGuard(guard func(http.Handler) http.Handler) {
	if guard == nil {
		s.guard.Store(nil)
		return
	}
	s.guard.Store(&guard)
}

// ResetRequests forgets every request recorded so far.
func (s *Server) ResetRequests() {
	s.recMu.Lock()
	s.requests = nil
	s.recMu.Unlock()
}

// AddTool adds a trivial read-only tool at runtime. mcp-go then sends
// notifications/tools/list_changed to connected sessions.
func (s *Server) AddTool(name string) {
	s.MCP.AddTool(trivialTool(name, "Added at runtime."), textHandler(name))
}

// RemoveTool removes a tool; mcp-go notifies connected sessions.
func (s *Server) RemoveTool(name string) {
	s.MCP.DeleteTools(name)
}

// SetDescription re-registers an existing tool with a new description, as
// an upstream that changed under the gateway would. It does nothing when
// the tool does not exist.
func (s *Server) SetDescription(tool, desc string) {
	st := s.MCP.GetTool(tool)
	if st == nil {
		return
	}
	st.Tool.Description = desc
	s.MCP.AddTools(*st)
}
