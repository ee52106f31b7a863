package conformance

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// addResources registers a text and a binary resource, one that a client
// can subscribe to, and a template whose parameter shows in what it reads.
func (f *Fixture) addResources() {
	f.mcp.AddResources(
		staticResource("test://static-text", "static-text", "Static Text Resource", "A static text resource for testing",
			mcp.TextResourceContents{MIMEType: "text/plain", Text: "This is the content of the static text resource."}),
		staticResource("test://static-binary", "static-binary", "Static Binary Resource", "A static binary resource (image) for testing",
			mcp.BlobResourceContents{MIMEType: "image/png", Blob: testImage}),
		staticResource("test://watched-resource", "watched-resource", "Watched Resource", "A resource a client can subscribe to",
			mcp.TextResourceContents{MIMEType: "text/plain", Text: "Watched resource content"}),
	)
	f.mcp.AddResourceTemplate(mcp.NewResourceTemplate("test://template/{id}/data", "template",
		mcp.WithTemplateDescription("A resource template with parameter substitution"),
		mcp.WithTemplateMIMEType("application/json")), readTemplate)
}

// staticResource declares a resource whose contents never change. contents
// is a TextResourceContents or BlobResourceContents without its URI.
func staticResource(uri, name, title, desc string, contents mcp.ResourceContents) server.ServerResource {
	switch c := contents.(type) {
	case mcp.TextResourceContents:
		c.URI = uri
		contents = c
	case mcp.BlobResourceContents:
		c.URI = uri
		contents = c
	}
	mime := ""
	if r, ok := contents.(interface{ GetMIMEType() string }); ok {
		mime = r.GetMIMEType()
	}
	return server.ServerResource{
		Resource: mcp.NewResource(uri, name, mcp.WithResourceTitle(title), mcp.WithResourceDescription(desc), mcp.WithMIMEType(mime)),
		Handler: func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{contents}, nil
		},
	}
}

// readTemplate reads test://template/{id}/data as JSON naming the id.
func readTemplate(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	id := strings.TrimSuffix(strings.TrimPrefix(req.Params.URI, "test://template/"), "/data")
	text, _ := json.Marshal(map[string]any{"id": id, "templateTest": true, "data": "Data for ID: " + id})
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(text)}}, nil
}

// addPrompts registers a prompt without arguments, one with two, one that
// embeds a resource and one with an image.
func (f *Fixture) addPrompts() {
	f.mcp.AddPrompt(mcp.NewPrompt("test_simple_prompt",
		mcp.WithPromptTitle("Simple Test Prompt"),
		mcp.WithPromptDescription("A simple prompt without arguments")),
		prompt(func(map[string]string) []mcp.Content {
			return []mcp.Content{mcp.NewTextContent("This is a simple prompt for testing.")}
		}))
	f.mcp.AddPrompt(mcp.NewPrompt("test_prompt_with_arguments",
		mcp.WithPromptTitle("Prompt With Arguments"),
		mcp.WithPromptDescription("A prompt with required arguments"),
		mcp.WithArgument("arg1", mcp.ArgumentDescription("First test argument"), mcp.RequiredArgument()),
		mcp.WithArgument("arg2", mcp.ArgumentDescription("Second test argument"), mcp.RequiredArgument())),
		prompt(func(args map[string]string) []mcp.Content {
			return []mcp.Content{mcp.NewTextContent("Prompt with arguments: arg1='" + args["arg1"] + "', arg2='" + args["arg2"] + "'")}
		}))
	f.mcp.AddPrompt(mcp.NewPrompt("test_prompt_with_embedded_resource",
		mcp.WithPromptTitle("Prompt With Embedded Resource"),
		mcp.WithPromptDescription("A prompt that includes an embedded resource"),
		mcp.WithArgument("resourceUri", mcp.ArgumentDescription("URI of the resource to embed"), mcp.RequiredArgument())),
		prompt(func(args map[string]string) []mcp.Content {
			return []mcp.Content{
				mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: args["resourceUri"], MIMEType: "text/plain", Text: "Embedded resource content for testing."}),
				mcp.NewTextContent("Please process the embedded resource above."),
			}
		}))
	f.mcp.AddPrompt(mcp.NewPrompt("test_prompt_with_image",
		mcp.WithPromptTitle("Prompt With Image"),
		mcp.WithPromptDescription("A prompt that includes image content")),
		prompt(func(map[string]string) []mcp.Content {
			return []mcp.Content{mcp.NewImageContent(testImage, "image/png"), mcp.NewTextContent("Please analyze the image above.")}
		}))
}

// prompt answers with one user message per content item that messages
// makes of the arguments.
func prompt(messages func(args map[string]string) []mcp.Content) server.PromptHandlerFunc {
	return func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		var out []mcp.PromptMessage
		for _, c := range messages(req.Params.Arguments) {
			out = append(out, mcp.NewPromptMessage(mcp.RoleUser, c))
		}
		return mcp.NewGetPromptResult("", out), nil
	}
}
