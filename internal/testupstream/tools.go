package testupstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// LongToolName is the catalog's tool whose name goes past the gateway's
// limit once prefixed with a connector name.
const LongToolName = "a_tool_with_a_rather_long_name_that_goes_past_the_limit_once_prefixed"

// readOnly marks a tool as read-only and nothing else. mcp.NewTool's
// default annotations claim destructiveHint true and openWorldHint true,
// which would make every tool look like a write tool.
var readOnly = mcp.ToolAnnotation{ReadOnlyHint: mcp.ToBoolPtr(true)}

// addTools registers the catalog's tools. Tools without readOnlyHint
// (fail, slow, progress, whoami, delete_everything) count as write tools.
func addTools(s *server.MCPServer, name string, cancelled *atomic.Int64, delivered *deliveries) {
	s.AddTools(
		server.ServerTool{Tool: echoTool(), Handler: echo},
		server.ServerTool{Tool: richTool(), Handler: rich(name)},
		server.ServerTool{Tool: extensionTool(), Handler: extension},
		server.ServerTool{Tool: plainTool("fail", "Always returns a tool error."), Handler: fail},
		server.ServerTool{Tool: slowTool(), Handler: slow(cancelled)},
		server.ServerTool{Tool: progressTool(), Handler: progress(delivered)},
		server.ServerTool{Tool: deleteTool(), Handler: textHandler("deleted")},
		server.ServerTool{Tool: trivialTool(LongToolName, "Has a long name."), Handler: textHandler("long")},
		server.ServerTool{Tool: plainTool("whoami", "Reports the credentials it was called with."), Handler: whoami},
	)
}

// addExtraTools registers tool-000 onwards, to make tools/list larger.
func addExtraTools(s *server.MCPServer, n int) {
	if n <= 0 {
		return
	}
	tools := make([]server.ServerTool, n)
	for i := range tools {
		name := fmt.Sprintf("tool-%03d", i)
		tools[i] = server.ServerTool{Tool: trivialTool(name, "Padding for benchmarks."), Handler: textHandler(name)}
	}
	s.AddTools(tools...)
}

func echoTool() mcp.Tool {
	return mcp.NewTool("echo",
		mcp.WithDescription("Returns the message it is given."),
		mcp.WithString("message", mcp.Required(), mcp.Description("The text to return.")),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{Title: "Echo", ReadOnlyHint: mcp.ToBoolPtr(true)}),
	)
}

// echo is the benchmarks' trivial tool, so it does no more than it must.
func echo(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	msg, err := req.RequireString("message")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return mcp.NewToolResultText(msg), nil
}

// plainTool is a tool with no arguments and no annotation hints at all.
func plainTool(name, desc string) mcp.Tool {
	return mcp.NewTool(name, mcp.WithDescription(desc), mcp.WithToolAnnotation(mcp.ToolAnnotation{}))
}

// trivialTool is a read-only tool with no arguments.
func trivialTool(name, desc string) mcp.Tool {
	return mcp.NewTool(name, mcp.WithDescription(desc), mcp.WithToolAnnotation(readOnly))
}

// textHandler answers every call with text.
func textHandler(text string) server.ToolHandlerFunc {
	return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(text), nil
	}
}

func fail(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultError("it failed"), nil
}

func deleteTool() mcp.Tool {
	return mcp.NewTool("delete_everything",
		mcp.WithDescription("Pretends to delete everything."),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{DestructiveHint: mcp.ToBoolPtr(true)}),
	)
}

func slowTool() mcp.Tool {
	return mcp.NewTool("slow",
		mcp.WithDescription("Waits ms milliseconds, or until cancelled."),
		mcp.WithNumber("ms", mcp.Required(), mcp.Description("How long to wait.")),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{}),
	)
}

// slow waits, and counts the calls whose context ended first, so that tests
// can prove a cancellation reached the upstream.
func slow(cancelled *atomic.Int64) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		d := time.Duration(req.GetFloat("ms", 0) * float64(time.Millisecond))
		if !sleep(ctx, d) {
			cancelled.Add(1)
			return nil, ctx.Err()
		}
		return mcp.NewToolResultText("done"), nil
	}
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func progressTool() mcp.Tool {
	return mcp.NewTool("progress",
		mcp.WithDescription("Reports steps progress notifications, then returns."),
		mcp.WithNumber("steps", mcp.Required(), mcp.Description("How many notifications to send.")),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{}),
	)
}

// progress sends steps notifications/progress about 5ms apart when the
// caller asked for them with a progressToken, and answers only once each
// has been written to one of the server's response streams (see
// delivery.go): mcp-go would otherwise drop one still on its way out.
func progress(delivered *deliveries) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		steps := req.GetInt("steps", 0)
		var token mcp.ProgressToken
		if req.Params.Meta != nil {
			token = req.Params.Meta.ProgressToken
		}
		if token == nil {
			return steadily(ctx, steps, func(int) error { return nil })
		}
		wait, err := delivered.expect(token, steps)
		if err != nil {
			return nil, err
		}
		defer delivered.forget(wait)
		res, err := steadily(ctx, steps, func(i int) error {
			return notifyProgress(ctx, token, i, steps, fmt.Sprintf("step %d of %d", i, steps))
		})
		if err == nil {
			// One not written within the cap is lost (see delivery.go):
			// answering lets the caller see that rather than hang.
			wait.await(ctx)
		}
		return res, err
	}
}

// steadily runs step 1..steps about 5ms apart, and answers "progressed".
func steadily(ctx context.Context, steps int, step func(int) error) (*mcp.CallToolResult, error) {
	for i := 1; i <= steps; i++ {
		if err := step(i); err != nil {
			return nil, err
		}
		if i < steps && !sleep(ctx, 5*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return mcp.NewToolResultText("progressed"), nil
}

// notifyProgress sends one notifications/progress to the caller. The same
// call serves both eras: mcp-go queues it on the request's session, which
// for a legacy client is its initialized session and for a 2026-07-28
// client is the session mcp-go makes up for the one request. The transport
// writes it to whichever of the session's streams takes it first: a
// 2026-07-28 request's only stream is its own POST's, ahead of the result;
// a legacy session's are also its GET stream and its other requests' POSTs.
func notifyProgress(ctx context.Context, token mcp.ProgressToken, i, total int, message string) error {
	err := server.ServerFromContext(ctx).SendNotificationToClient(ctx,
		string(mcp.MethodNotificationProgress), map[string]any{
			"progressToken": token,
			"progress":      i,
			"total":         total,
			"message":       message,
		})
	if err != nil {
		return fmt.Errorf("sending progress %d of %d: %w", i, total, err)
	}
	return nil
}

// whoami reports what the upstream saw of the caller's credentials, without
// echoing the credential itself: tests use it to prove which Authorization
// reached the upstream.
func whoami(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	auth := "absent"
	if req.Header.Get("Authorization") != "" {
		auth = "present"
	}
	text := fmt.Sprintf("authorization=%s x-test-canary=%s", auth, req.Header.Get("X-Test-Canary"))
	return mcp.NewToolResultText(text), nil
}
