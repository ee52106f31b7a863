// Package demo is a small MCP server written with mcp-go, used by the
// README's quickstart as an upstream for mcpgate. It offers a few friendly
// tools, a resource and a prompt.
package demo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// readme is the text of the demo://readme resource.
const readme = `# Demo MCP server

Tools:

- echo: returns its message
- time_now: the current time, in UTC
- add: adds two numbers
- notes_append: appends a note (the only tool that changes anything)
- notes_list: lists the notes

Prompt: summarize, with a text argument.
`

// readOnly marks a tool that changes nothing and reaches nothing outside
// this process. mcp-go's default annotations assume the opposite.
var readOnly = mcp.WithToolAnnotation(mcp.ToolAnnotation{
	ReadOnlyHint:  mcp.ToBoolPtr(true),
	OpenWorldHint: mcp.ToBoolPtr(false),
})

// NewServer returns a new demo server. Each has its own notes.
func NewServer() *server.MCPServer {
	s := server.NewMCPServer("demo", "1.0.0",
		server.WithInstructions("A demo server: echo, time_now, add, and a list of notes."),
	)
	notes := &notebook{}
	s.AddTool(mcp.NewTool("echo",
		mcp.WithDescription("Returns the message it is given."),
		mcp.WithString("message", mcp.Required()),
		readOnly,
	), echo)
	s.AddTool(mcp.NewTool("time_now",
		mcp.WithDescription("Returns the current time in UTC, in RFC 3339 format."),
		readOnly,
	), timeNow)
	s.AddTool(mcp.NewTool("add",
		mcp.WithDescription("Adds two numbers."),
		mcp.WithNumber("a", mcp.Required()),
		mcp.WithNumber("b", mcp.Required()),
		mcp.WithOutputSchema[sum](),
		readOnly,
	), mcp.NewTypedToolHandler(add))
	s.AddTool(mcp.NewTool("notes_append",
		mcp.WithDescription("Appends a note to the list."),
		mcp.WithString("text", mcp.Required()),
		// A write, but an additive one: nothing is lost.
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			ReadOnlyHint:    mcp.ToBoolPtr(false),
			DestructiveHint: mcp.ToBoolPtr(false),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		}),
	), notes.append)
	s.AddTool(mcp.NewTool("notes_list",
		mcp.WithDescription("Lists the notes, oldest first."),
		readOnly,
	), notes.list)

	s.AddResource(mcp.NewResource("demo://readme", "readme",
		mcp.WithResourceDescription("What this server offers."),
		mcp.WithMIMEType("text/markdown"),
	), readReadme)
	s.AddPrompt(mcp.NewPrompt("summarize",
		mcp.WithPromptDescription("Asks for a one-paragraph summary of a text."),
		mcp.WithArgument("text", mcp.RequiredArgument(), mcp.ArgumentDescription("The text to summarize.")),
	), summarize)
	return s
}

// Handler returns mcp-go's Streamable HTTP handler for a new demo server.
// It serves clients of both protocol eras: the initialize handshake and
// the stateless 2026-07-28 revision.
func Handler() http.Handler {
	return server.NewStreamableHTTPServer(NewServer())
}

func echo(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	msg, err := req.RequireString("message")
	if err != nil {
		// A tool error goes back to the model, which can correct itself.
		return mcp.NewToolResultError(err.Error()), nil
	}
	return mcp.NewToolResultText(msg), nil
}

func timeNow(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText(time.Now().UTC().Format(time.RFC3339)), nil
}

type addArgs struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// sum is add's structured result; its output schema is derived from it.
type sum struct {
	Sum float64 `json:"sum"`
}

func add(_ context.Context, _ mcp.CallToolRequest, args addArgs) (*mcp.CallToolResult, error) {
	s := sum{Sum: args.A + args.B}
	// Clients that predate structured content read the text instead.
	return mcp.NewToolResultStructured(s, fmt.Sprintf("%g + %g = %g", args.A, args.B, s.Sum)), nil
}

// notebook is the in-memory list behind notes_append and notes_list.
type notebook struct {
	mu    sync.Mutex
	notes []string
}

func (n *notebook) append(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	text, err := req.RequireString("text")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	n.mu.Lock()
	n.notes = append(n.notes, text)
	count := len(n.notes)
	n.mu.Unlock()
	return mcp.NewToolResultText(fmt.Sprintf("noted; %d note(s) so far", count)), nil
}

func (n *notebook) list(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.notes) == 0 {
		return mcp.NewToolResultText("no notes yet"), nil
	}
	return mcp.NewToolResultText(strings.Join(n.notes, "\n")), nil
}

func readReadme(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	return []mcp.ResourceContents{
		mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/markdown", Text: readme},
	}, nil
}

func summarize(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	text := req.Params.Arguments["text"]
	if text == "" {
		return nil, fmt.Errorf("summarize: argument text is required")
	}
	return mcp.NewGetPromptResult("Summarize a text", []mcp.PromptMessage{
		mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Summarize the following text in one paragraph:\n\n"+text)),
	}), nil
}
