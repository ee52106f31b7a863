package testupstream

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// SharedResourceURI is the resource every instance serves under the same
// URI, with different text, for the gateway to disambiguate.
const SharedResourceURI = "shared://common"

// newMCPServer builds the catalog. Every instance serves the same one;
// only name, in resource URIs and texts, tells them apart.
func newMCPServer(opts Options, cancelled *atomic.Int64, delivered *deliveries, subs *subscribers) *server.MCPServer {
	complete := completer{itemTemplate: itemTemplate(opts.Name)}
	s := server.NewMCPServer(opts.Name, "1.0.0",
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithHooks(subs.hooks()),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithLogging(),
		server.WithPromptCompletionProvider(complete),
		server.WithResourceCompletionProvider(complete),
	)
	addTools(s, opts.Name, cancelled, delivered)
	addExtraTools(s, opts.ExtraTools)
	addResources(s, opts.Name)
	addPrompts(s, opts.Name)
	return s
}

func itemTemplate(name string) string {
	return "test://" + name + "/items/{id}"
}

func addResources(s *server.MCPServer, name string) {
	readme := "test://" + name + "/readme"
	logo := "test://" + name + "/logo.png"
	s.AddResource(
		mcp.NewResource(readme, "readme", mcp.WithMIMEType("text/markdown"), mcp.WithResourceDescription("The readme of "+name+".")),
		textResource(readme, "text/markdown", "readme of "+name),
	)
	s.AddResource(
		mcp.NewResource(logo, "logo", mcp.WithMIMEType("image/png")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.BlobResourceContents{URI: logo, MIMEType: "image/png", Blob: pngBase64}}, nil
		},
	)
	s.AddResource(
		mcp.NewResource(SharedResourceURI, "common", mcp.WithMIMEType("text/plain")),
		textResource(SharedResourceURI, "text/plain", "common from "+name),
	)
	s.AddResourceTemplate(
		mcp.NewResourceTemplate(itemTemplate(name), "item", mcp.WithTemplateMIMEType("text/plain")),
		item(name),
	)
}

func textResource(uri, mimeType, text string) server.ResourceHandlerFunc {
	return func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: mimeType, Text: text}}, nil
	}
}

// item serves test://<name>/items/{id}. The id is taken from the URI rather
// than from mcp-go's template match, which hands it over as a []string.
func item(name string) server.ResourceTemplateHandlerFunc {
	prefix := "test://" + name + "/items/"
	return func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		id := strings.TrimPrefix(req.Params.URI, prefix)
		text := fmt.Sprintf("item %s of %s", id, name)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: text}}, nil
	}
}

func addPrompts(s *server.MCPServer, name string) {
	s.AddPrompt(
		mcp.NewPrompt("greet",
			mcp.WithPromptDescription("Greets someone."),
			mcp.WithArgument("who", mcp.RequiredArgument(), mcp.ArgumentDescription("Who to greet.")),
		),
		greet(name),
	)
	s.AddPrompt(
		mcp.NewPrompt("plain", mcp.WithPromptDescription("A prompt without arguments.")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return userMessage("A plain prompt", "A plain prompt from "+name), nil
		},
	)
}

func greet(name string) server.PromptHandlerFunc {
	return func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		who := req.Params.Arguments["who"]
		if who == "" {
			return nil, fmt.Errorf("greet: argument who is required")
		}
		return userMessage("A greeting", fmt.Sprintf("Hello, %s, from %s", who, name)), nil
	}
}

func userMessage(desc, text string) *mcp.GetPromptResult {
	return mcp.NewGetPromptResult(desc, []mcp.PromptMessage{
		mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
	})
}

// completer completes greet's who and the item template's id.
type completer struct {
	itemTemplate string
}

var (
	completionNames = []string{"alice", "albert", "bob", "carol"}
	completionIDs   = []string{"1", "2", "3"}
)

// CompletePromptArgument completes greet's who from a fixed list of names.
func (completer) CompletePromptArgument(_ context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if prompt != "greet" || arg.Name != "who" {
		return matching(nil, ""), nil
	}
	return matching(completionNames, arg.Value), nil
}

// CompleteResourceArgument completes the item template's id.
func (c completer) CompleteResourceArgument(_ context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if uri != c.itemTemplate || arg.Name != "id" {
		return matching(nil, ""), nil
	}
	return matching(completionIDs, arg.Value), nil
}

// matching returns the values that start with prefix; never nil, as
// completion values are a required array.
func matching(values []string, prefix string) *mcp.Completion {
	out := []string{}
	for _, v := range values {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return &mcp.Completion{Values: out, Total: len(out)}
}
