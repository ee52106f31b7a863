package agenttest

import (
	"context"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Notes counts the notifications a client receives, by method.
type Notes struct {
	mu sync.Mutex
	n  map[string]int
}

// On counts n; it is a client's notification handler.
func (c *Notes) On(n mcp.JSONRPCNotification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[n.Method]++
}

// Count is how many notifications of method the client received.
func (c *Notes) Count(method mcp.MCPMethod) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[string(method)]
}

// Tools is how many notifications/tools/list_changed the client received.
func (c *Notes) Tools() int { return c.Count(mcp.MethodNotificationToolsListChanged) }

// Listen connects a client to url, as Dial does, that keeps a
// notification stream open and counts what comes on it in notes: in era
// legacy the session's GET stream, in era modern subscriptions/listen
// for the tools, prompts and resources lists. It returns once the server
// has answered the stream, which a server does only once it holds it: a
// notice sent after Listen returns reaches notes, with no wait for the
// stream to open.
func Listen(t testing.TB, url string, headers map[string]string, era Era, notes *Notes) *client.Client {
	t.Helper()
	return ListenFunc(t, url, headers, era, notes.On)
}

// ListenFunc is Listen with each notification handed to onNote.
func ListenFunc(t testing.TB, url string, headers map[string]string, era Era, onNote func(mcp.JSONRPCNotification)) *client.Client {
	t.Helper()
	modern := era.Name == "modern"
	stream := &streamWatch{next: http.DefaultTransport, open: make(chan struct{})}
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(headers),
		transport.WithLogger(slog.New(slog.DiscardHandler)),
		transport.WithHTTPBasicClient(&http.Client{Transport: stream}),
	}
	if !modern {
		opts = append(opts, transport.WithContinuousListening())
	}
	tr, err := transport.NewStreamableHTTP(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, era.Opts...)
	c.OnNotification(onNote)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		c.Close()
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ictx, icancel := context.WithTimeout(ctx, Timeout)
	defer icancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "agenttest-listener", Version: "1"}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ictx, req); err != nil {
		t.Fatalf("initialize %s: %v", url, err)
	}
	if modern {
		go func() {
			_ = c.Listen(ctx, mcp.SubscriptionFilter{ToolsListChanged: true, PromptsListChanged: true, ResourcesListChanged: true})
		}()
	}
	select {
	case <-stream.open:
	case <-ictx.Done():
		t.Fatalf("no notification stream opened at %s in %v", url, Timeout)
	}
	return c
}

// streamWatch is a client's transport that closes open at the first
// answer that is an event stream: the notification stream's, as Listen
// sends no other request that could be answered with one. Closed as the
// answer's header arrives, so that the stream is held by then.
type streamWatch struct {
	next http.RoundTripper
	once sync.Once
	open chan struct{}
}

// RoundTrip implements http.RoundTripper.
func (s *streamWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK {
		if media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); media == "text/event-stream" {
			s.once.Do(func() { close(s.open) })
		}
	}
	return resp, err
}
