package testupstream

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The rich tool exists to catch a gateway that re-serialises what it
// forwards: every optional field mcp-go can emit is set, with values a
// round trip through Go types would change (key order, a number beyond
// float64's precision, unicode, null).

// pngBase64 is a 1x1 transparent PNG.
const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

// wavBase64 is a valid WAV header with no samples.
const wavBase64 = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="

// richInputSchema has its keys out of alphabetical order on purpose: mcp-go
// passes a raw schema through byte for byte, and so must the gateway.
var richInputSchema = json.RawMessage(`{
	"type": "object",
	"$defs": {
		"point": {
			"type": "object",
			"properties": {"x": {"type": "number"}, "y": {"type": "number"}},
			"required": ["x", "y"],
			"additionalProperties": false
		}
	},
	"properties": {
		"mode": {"type": "string", "enum": ["fast", "thorough", "gründlich"], "default": "fast", "description": "How hard to try — «mode»."},
		"count": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3},
		"origin": {"$ref": "#/$defs/point"},
		"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "default": []},
		"ratio": {"type": "number", "exclusiveMaximum": 1, "default": 0.25}
	},
	"additionalProperties": false
}`)

var richOutputSchema = json.RawMessage(`{
	"type": "object",
	"properties": {
		"zeta": {"type": "integer"},
		"alpha": {"type": "object"},
		"list": {"type": "array"}
	},
	"required": ["zeta", "alpha", "list"]
}`)

// richStructured is the rich tool's structuredContent. "big" does not fit
// a float64, so a gateway that decodes and re-encodes it changes it.
var richStructured = json.RawMessage(`{"zeta":1,"alpha":{"big":12345678901234567890,"small":-1.5e-7,"none":null,"unicode":"héllo ✓ 日本語 🚀","nested":{"deep":[true,false]}},"list":[0,-0.5,"two",null,{"k":"v"}]}`)

func richTool() mcp.Tool {
	return mcp.Tool{
		Name:            "rich",
		Title:           "Rich",
		Description:     "Returns every content type: ünïcödé ✓ 日本語 🚀 — «quoted».",
		RawInputSchema:  richInputSchema,
		RawOutputSchema: richOutputSchema,
		Annotations: mcp.ToolAnnotation{
			Title:           "Rich result",
			ReadOnlyHint:    mcp.ToBoolPtr(true),
			DestructiveHint: mcp.ToBoolPtr(false),
			IdempotentHint:  mcp.ToBoolPtr(true),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		},
		Meta: &mcp.Meta{AdditionalFields: map[string]any{
			"com.example/category": "fixtures",
			"com.example/flags":    []any{"a", 1, nil, true},
		}},
		Icons: []mcp.Icon{{Src: "data:image/png;base64," + pngBase64, MIMEType: "image/png", Sizes: []string{"1x1"}}},
	}
}

// rich returns a result for the instance called name. Its "isError": false
// is added by the response rewrite in splice.go.
func rich(name string) server.ToolHandlerFunc {
	return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{
			Result: mcp.Result{Meta: &mcp.Meta{AdditionalFields: map[string]any{
				"com.example/trace":  "rich-1",
				"com.example/nested": map[string]any{"n": 1, "ok": true, "s": "ü"},
			}}},
			Content:              richContent(name),
			RawStructuredContent: richStructured,
		}, nil
	}
}

// richContent holds one item of every content type a tool result can carry.
func richContent(name string) []mcp.Content {
	readme := "test://" + name + "/readme"
	logo := "test://" + name + "/logo.png"
	size := int64(len("readme of " + name))

	text := mcp.NewTextContent("rich: ünïcödé ✓ 日本語 🚀")
	text.Annotations = &mcp.Annotations{Audience: []mcp.Role{mcp.RoleUser, mcp.RoleAssistant}, Priority: new(0.5)}
	image := mcp.NewImageContent(pngBase64, "image/png")
	image.Meta = &mcp.Meta{AdditionalFields: map[string]any{"com.example/alt": "one transparent pixel"}}
	link := mcp.NewResourceLink(readme, "readme", "The readme of "+name+".", "text/markdown")
	link.Size = &size

	return []mcp.Content{
		text,
		mcp.NewTextContent(string(richStructured)),
		image,
		mcp.NewAudioContent(wavBase64, "audio/wav"),
		link,
		mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: readme, MIMEType: "text/markdown", Text: "readme of " + name}),
		mcp.NewEmbeddedResource(mcp.BlobResourceContents{URI: logo, MIMEType: "image/png", Blob: pngBase64}),
	}
}

func extensionTool() mcp.Tool {
	return mcp.NewTool("extension",
		mcp.WithDescription("Returns a result with an unknown top-level member."),
		mcp.WithToolAnnotation(readOnly),
	)
}

// extension's result gets ExtensionResultMember from splice.go, and its
// definition ExtensionToolMember.
func extension(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText("extension"), nil
}
