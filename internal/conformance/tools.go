package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// testImage is a 1x1 red PNG and testAudio a minimal WAV, base64, the
// reference server's bytes.
const (
	testImage = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	testAudio = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
)

// logger names the fixture in its log notifications.
const logger = "conformance-test-server"

// addTools registers the tools every era serves: content of each kind,
// logging, progress, a tool error, sampling and elicitation (asked for as
// multi round-trip input, which mcp-go turns into server-initiated requests
// for a legacy client), and the tools that change the tool and prompt lists.
func (f *Fixture) addTools() {
	f.mcp.AddTools(
		tool("test_simple_text", "Tests simple text content response", content(mcp.NewTextContent("This is a simple text response for testing."))),
		tool("test_image_content", "Tests image content response", content(mcp.NewImageContent(testImage, "image/png"))),
		tool("test_audio_content", "Tests audio content response", content(mcp.NewAudioContent(testAudio, "audio/wav"))),
		tool("test_embedded_resource", "Tests embedded resource content response", content(mcp.NewEmbeddedResource(mcp.TextResourceContents{
			URI: "test://embedded-resource", MIMEType: "text/plain", Text: "This is an embedded resource content.",
		}))),
		tool("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)", content(
			mcp.NewTextContent("Multiple content types test:"),
			mcp.NewImageContent(testImage, "image/png"),
			mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: "test://mixed-content-resource", MIMEType: "application/json", Text: `{"test":"data","value":123}`,
			}),
		)),
		tool("test_error_handling", "Tests error response handling", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("This tool intentionally returns an error for testing"), nil
		}),
		tool("test_tool_with_logging", "Tests tool that emits log messages during execution", f.logging),
		tool("test_tool_with_progress", "Tests tool that reports progress notifications", f.progress),
		tool("test_sampling", "Tests server-initiated sampling (LLM completion request)", sampling,
			mcp.WithString("prompt", mcp.Required(), mcp.Description("The prompt to send to the LLM"))),
		tool("test_elicitation", "Tests server-initiated elicitation (user input request)", elicitation,
			mcp.WithString("message", mcp.Required(), mcp.Description("The message to show the user"))),
		tool("test_elicitation_sep1034_defaults", "Tests elicitation with default values per SEP-1034",
			elicit("Please review and update the form fields with defaults", defaultsSchema)),
		tool("test_elicitation_sep1330_enums", "Tests elicitation with enum schema improvements per SEP-1330",
			elicit("Please select options from the enum fields", enumsSchema)),
		server.ServerTool{
			Tool: mcp.NewToolWithRawSchema("json_schema_2020_12_tool",
				"Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)", jsonSchema202012),
			Handler: func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				args, _ := json.Marshal(req.GetArguments())
				return mcp.NewToolResultText("JSON Schema 2020-12 tool called with: " + string(args)), nil
			},
		},
		tool("test_trigger_tool_change", "Changes the tool list, so that listeners are notified", f.changeTools),
		tool("test_trigger_prompt_change", "Changes the prompt list, so that listeners are notified", f.changePrompts),
	)
}

// tool declares a tool taking the given parameters (none by default).
func tool(name, desc string, h server.ToolHandlerFunc, opts ...mcp.ToolOption) server.ServerTool {
	opts = append([]mcp.ToolOption{mcp.WithDescription(desc)}, opts...)
	return server.ServerTool{Tool: mcp.NewTool(name, opts...), Handler: h}
}

// content answers every call with the same content.
func content(c ...mcp.Content) server.ToolHandlerFunc {
	return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: c}, nil
	}
}

// logging sends three info log messages, each once the previous one is
// written, then answers.
func (f *Fixture) logging(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	for i, msg := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
		if err := pause(ctx, i); err != nil {
			return nil, err
		}
		if err := f.log(ctx, mcp.LoggingLevelInfo, msg); err != nil {
			return nil, err
		}
	}
	if err := pause(ctx, 1); err != nil { // as in progress
		return nil, err
	}
	return mcp.NewToolResultText("Tool with logging executed successfully"), nil
}

// log sends a log message, if the client asked for its level, and waits
// until it is written.
func (f *Fixture) log(ctx context.Context, level mcp.LoggingLevel, data string) error {
	if !logLevelAdmits(ctx, level) {
		return nil
	}
	msg := mcp.NewLoggingMessageNotification(level, logger, data)
	if err := f.mcp.SendLogMessageToClient(ctx, msg); err != nil {
		return fmt.Errorf("sending log message: %w", err)
	}
	params := map[string]any{"level": level, "logger": logger, "data": data}
	return f.written.wait(ctx, string(mcp.MethodNotificationMessage), params)
}

// logLevelAdmits reports whether a log message of this level goes to the
// client: one at or above the level the request declared in _meta
// (2026-07-28, where no level means no log messages) or that the session
// set with logging/setLevel. It is mcp-go's own filter, asked ahead so
// that log knows whether to wait.
func logLevelAdmits(ctx context.Context, level mcp.LoggingLevel) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.LogLevel != "" && level.ShouldSendTo(info.LogLevel)
	}
	session, ok := server.ClientSessionFromContext(ctx).(server.SessionWithLogging)
	return ok && level.ShouldSendTo(session.GetLogLevel())
}

// progress reports 0, 50 and 100 of 100 under the caller's progressToken,
// each once the previous one is written, and answers with the token.
func (f *Fixture) progress(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var token mcp.ProgressToken
	if req.Params.Meta != nil {
		token = req.Params.Meta.ProgressToken
	}
	if token == nil {
		return mcp.NewToolResultText("no progress token"), nil
	}
	for i, step := range []int{0, 50, 100} {
		if err := pause(ctx, i); err != nil {
			return nil, err
		}
		params := map[string]any{
			"progressToken": token,
			"progress":      step,
			"total":         100,
			"message":       "Completed step " + strconv.Itoa(step) + " of 100",
		}
		if err := f.mcp.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), params); err != nil {
			return nil, fmt.Errorf("sending progress: %w", err)
		}
		if err := f.written.wait(ctx, string(mcp.MethodNotificationProgress), params); err != nil {
			return nil, err
		}
	}
	// The answer goes on the call's stream: the same pause keeps it from
	// overtaking the last notification, should that be on the GET stream.
	if err := pause(ctx, 1); err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(fmt.Sprint(token)), nil
}

// stepPause is the pause the suite's logging and progress scenarios ask
// for between notifications. A legacy session may write a notification to
// its GET stream rather than the call's (mcp-go hands it to whichever
// stream reads first), and the pause keeps the client, which reads the two
// apart, from seeing them out of order.
const stepPause = 50 * time.Millisecond

// pause waits stepPause before every step but the first, or until ctx ends.
func pause(ctx context.Context, step int) error {
	if step == 0 {
		return nil
	}
	// Since Go 1.23 an unfired time.After timer is collected, stopped or not.
	select {
	case <-time.After(stepPause):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sampling asks the client's LLM the prompt and answers with its reply.
func sampling(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if reply := server.SamplingResponse(req.Params.InputResponses, "sample"); reply != nil {
		return mcp.NewToolResultText("LLM response: " + samplingText(reply)), nil
	}
	return server.NewInputRequestBuilder("").Sample("sample", mcp.CreateMessageParams{
		Messages:  []mcp.SamplingMessage{userText(req.GetString("prompt", ""))},
		MaxTokens: 100,
	}).ToolResult(), nil
}

// elicitation asks the user the message and answers with their response.
func elicitation(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	schema := map[string]any{
		"type":       "object",
		"properties": map[string]any{"response": map[string]any{"type": "string", "description": "User's response"}},
		"required":   []string{"response"},
	}
	return elicitAs("User response", req.GetString("message", ""), schema)(ctx, req)
}

// elicit asks the user message with schema and answers with the outcome.
func elicit(message string, schema map[string]any) server.ToolHandlerFunc {
	return elicitAs("Elicitation completed", message, schema)
}

// elicitAs is elicit with the answer's prefix.
func elicitAs(prefix, message string, schema map[string]any) server.ToolHandlerFunc {
	return func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if answer := server.ElicitationResponse(req.Params.InputResponses, "elicit"); answer != nil {
			got, _ := json.Marshal(answer.Content)
			return mcp.NewToolResultText(fmt.Sprintf("%s: action=%s, content=%s", prefix, answer.Action, got)), nil
		}
		return server.NewInputRequestBuilder("").
			Elicit("elicit", mcp.ElicitationParams{Message: message, RequestedSchema: schema}).
			ToolResult(), nil
	}
}

// changeTools re-registers a tool, which makes mcp-go announce
// notifications/tools/list_changed to sessions and listen streams.
func (f *Fixture) changeTools(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if st := f.mcp.GetTool("test_simple_text"); st != nil {
		f.mcp.AddTools(*st)
	}
	return mcp.NewToolResultText("Mutation triggered"), nil
}

// changePrompts re-registers a prompt, which makes mcp-go announce
// notifications/prompts/list_changed.
func (f *Fixture) changePrompts(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if sp, ok := f.mcp.ListPrompts()["test_simple_prompt"]; ok {
		f.mcp.AddPrompts(*sp)
	}
	return mcp.NewToolResultText("Mutation triggered"), nil
}

// userText is a sampling message from the user.
func userText(text string) mcp.SamplingMessage {
	return mcp.SamplingMessage{Role: mcp.RoleUser, Content: mcp.NewTextContent(text)}
}

// samplingText is the text of an LLM reply, or "No response". The reply's
// content is a TextContent when mcp-go asked a legacy client, and a decoded
// JSON object when the client sent it in inputResponses.
func samplingText(reply *mcp.CreateMessageResult) string {
	switch c := reply.Content.(type) {
	case mcp.TextContent:
		return c.Text
	case map[string]any:
		if text, ok := c["text"].(string); ok {
			return text
		}
	}
	return "No response"
}
