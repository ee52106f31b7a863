// Package conformance serves the official MCP conformance suite's reference
// tools, resources and prompts from a real mcp-go server, and runs the suite
// (@modelcontextprotocol/conformance, see suite.go) against an MCP endpoint.
//
// The fixture follows the suite's own reference server
// (examples/servers/typescript/everything-server.ts in the suite's source):
// every scenario of the requirement sets 2025-11-25 and 2026-07-28 passes
// directly against it, so that a run through mcpgate, with the fixture as
// its upstream, measures only what the gateway changes.
package conformance

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpgate/caddy-mcpgate/internal/testupstream"
)

// Era selects which MCP protocol eras a Fixture speaks: the test
// upstream's, so that both name them alike.
type Era = testupstream.Era

// The eras a Fixture speaks. LegacyOnly refuses a 2026-07-28 request,
// server/discover included, as a 2025-11-25 server would, so that a client
// falls back to initialize; ModernOnly refuses the initialize handshake
// and the legacy GET stream, as a server of 2026-07-28 alone would.
const (
	BothEras   = testupstream.BothEras
	LegacyOnly = testupstream.LegacyOnly
	ModernOnly = testupstream.ModernOnly
)

// cacheTTLMs is the freshness hint on list and read results (SEP-2549),
// the reference server's five minutes.
const cacheTTLMs = 300_000

// Fixture is the conformance suite's reference MCP server. It answers on
// any path; mount it where the suite should find it (the suite is given the
// full URL).
type Fixture struct {
	era        Era
	mcp        *server.MCPServer
	streamable *server.StreamableHTTPServer
	// stateKey signs requestState, so that a tampered state is detected
	// (SEP-2322: the state is opaque to the client, and a server that keeps
	// anything in it must verify it).
	stateKey []byte
	// written tracks the notifications that reached a response stream.
	written *notifications
}

// NewFixture returns a Fixture speaking the given era. Close it to end its
// sessions' open streams.
func NewFixture(era Era) *Fixture {
	f := &Fixture{era: era, stateKey: make([]byte, 32), written: newNotifications()}
	// crypto/rand.Read never returns an error (it crashes the program
	// instead when the system's source fails).
	_, _ = rand.Read(f.stateKey)
	f.mcp = server.NewMCPServer("mcpgate-conformance-fixture", "1.0.0",
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithLogging(),
		server.WithCompletions(),
		server.WithMethodCacheHints(mcp.MethodResourcesRead, cacheTTLMs, mcp.CacheScopePrivate),
		server.WithCacheHints(cacheTTLMs, mcp.CacheScopePublic),
	)
	f.addTools()
	f.addInputRequiredTools()
	f.addResources()
	f.addPrompts()
	f.streamable = server.NewStreamableHTTPServer(f.mcp, transportOptions(era)...)
	return f
}

// transportOptions maps an Era onto mcp-go's transport options.
func transportOptions(era Era) []server.StreamableHTTPOption {
	opts := []server.StreamableHTTPOption{
		server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)),
		// With an event store mcp-go keeps a legacy session's streams
		// resumable with Last-Event-ID (SEP-1699), as the reference
		// server's are.
		server.WithEventStore(server.NewInMemoryEventStore()),
		// Remember the sessions issued and ended, so that a request on an
		// unknown or deleted session gets 404 and the client initializes
		// again, as the reference server does.
		server.WithStateful(true),
	}
	switch era {
	case LegacyOnly:
		opts = append(opts, server.WithStreamableHTTPProtocolVersions(testupstream.LegacyVersions()...))
	case ModernOnly:
		opts = append(opts, server.WithStreamableHTTPProtocolVersions(mcp.ProtocolVersion20260728))
	}
	return opts
}

// ServeHTTP answers an MCP request.
func (f *Fixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.era == ModernOnly && testupstream.RefuseLegacy(w, r) {
		return
	}
	if f.refuseMissingCapability(w, r) {
		return
	}
	f.streamable.ServeHTTP(f.written.watch(w), r)
}

// Close ends every session, so that their open GET streams return.
func (f *Fixture) Close() {
	f.streamable.CloseSessions(context.Background())
}

var _ http.Handler = (*Fixture)(nil)
