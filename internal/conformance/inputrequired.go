package conformance

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The tools and the prompt below ask the client for input the 2026-07-28
// way (SEP-2322): they return an input_required result naming what they
// need, and the client retries with inputResponses and the requestState
// echoed back. mcp-go turns the same handlers into server-initiated
// requests for a legacy client.

// errTamperedState is the answer to a requestState whose signature does not
// verify.
var errTamperedState = errors.New("requestState integrity check failed")

// addInputRequiredTools registers the multi round-trip tools and prompt.
func (f *Fixture) addInputRequiredTools() {
	f.mcp.AddTools(
		tool("test_input_required_result_elicitation", "MRTR: returns InputRequiredResult with elicitation request", askName),
		tool("test_input_required_result_sampling", "MRTR: returns InputRequiredResult with sampling request", askCapital),
		tool("test_input_required_result_list_roots", "MRTR: returns InputRequiredResult with roots/list request", askRoots),
		tool("test_input_required_result_request_state", "MRTR: returns InputRequiredResult with requestState", f.askConfirmation("request-state", "state-ok: requestState validated")),
		tool("test_input_required_result_tampered_state", "MRTR: HMAC-signed requestState integrity test", f.askConfirmation("tamper-test", "integrity-ok: state verified")),
		tool("test_input_required_result_multiple_inputs", "MRTR: returns InputRequiredResult with multiple input requests", f.askThree),
		tool("test_input_required_result_multi_round", "MRTR: multi-round InputRequiredResult workflow", f.askTwoRounds),
		tool("test_input_required_result_capabilities", "MRTR: respects client capabilities in inputRequests", f.askDeclared),
		tool("test_missing_capability", "Test tool requiring sampling", needsSampling),
		tool("test_streaming_elicitation", "Diagnostic tool validating response progress streams",
			elicit("Streaming elicitation", objectSchema("value", "string"))),
		tool("test_logging_tool", "Diagnostic logging validator tool", f.logOnce),
	)
	f.mcp.AddPrompt(mcp.NewPrompt("test_input_required_result_prompt",
		mcp.WithPromptDescription("MRTR: prompt that requires elicitation input")), askContext)
}

// askName elicits the user's name, then greets them.
func askName(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if answer := server.ElicitationResponse(req.Params.InputResponses, "user_name"); answer != nil {
		return mcp.NewToolResultText("Hello, " + field(answer, "name") + "!"), nil
	}
	return server.NewInputRequestBuilder("").
		Elicit("user_name", nameRequest("What is your name?")).ToolResult(), nil
}

// askCapital asks the client's LLM a question and answers with the reply.
func askCapital(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if reply := server.SamplingResponse(req.Params.InputResponses, "sample_request"); reply != nil {
		return mcp.NewToolResultText("Sampling result: " + samplingText(reply)), nil
	}
	return server.NewInputRequestBuilder("").Sample("sample_request", mcp.CreateMessageParams{
		Messages:  []mcp.SamplingMessage{userText("What is the capital of France?")},
		MaxTokens: 100,
	}).ToolResult(), nil
}

// askRoots asks for the client's roots and counts them.
func askRoots(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if roots := server.RootsResponse(req.Params.InputResponses, "roots_request"); roots != nil {
		return mcp.NewToolResultText(fmt.Sprintf("Found %d root(s)", len(roots.Roots))), nil
	}
	return server.NewInputRequestBuilder("").Roots("roots_request").ToolResult(), nil
}

// askConfirmation asks the user to confirm, with a signed requestState of
// the given kind, and answers done once the confirmation comes back with
// that state intact. A state that does not verify is an error.
func (f *Fixture) askConfirmation(kind, done string) server.ToolHandlerFunc {
	return func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if req.Params.RequestState != "" {
			state, err := f.openState(req.Params.RequestState)
			if err != nil {
				return nil, err
			}
			if state.Kind == kind && server.ElicitationResponse(req.Params.InputResponses, "confirm") != nil {
				return mcp.NewToolResultText(done), nil
			}
		}
		return server.NewInputRequestBuilder(f.sealState(requestState{Kind: kind})).
			Elicit("confirm", mcp.ElicitationParams{Message: "Please confirm", RequestedSchema: objectSchema("ok", "boolean")}).
			ToolResult(), nil
	}
}

// askThree asks for a name, an LLM greeting and the roots in one round.
func (f *Fixture) askThree(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	in := req.Params.InputResponses
	name := server.ElicitationResponse(in, "user_name")
	greeting := server.SamplingResponse(in, "greeting")
	roots := server.RootsResponse(in, "client_roots")
	if req.Params.RequestState != "" {
		state, err := f.openState(req.Params.RequestState)
		if err != nil {
			return nil, err
		}
		if state.Kind == "multiple-inputs" && name != nil && greeting != nil && roots != nil {
			return mcp.NewToolResultText(fmt.Sprintf("Name: %s; Greeting: %s; Roots: %d",
				field(name, "name"), samplingText(greeting), len(roots.Roots))), nil
		}
	}
	return server.NewInputRequestBuilder(f.sealState(requestState{Kind: "multiple-inputs"})).
		Elicit("user_name", nameRequest("What is your name?")).
		Sample("greeting", mcp.CreateMessageParams{Messages: []mcp.SamplingMessage{userText("Generate a greeting")}, MaxTokens: 50}).
		Roots("client_roots").
		ToolResult(), nil
}

// askTwoRounds asks for a name, then, in a second round that carries the
// name in its signed state, for a favourite colour.
func (f *Fixture) askTwoRounds(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var state requestState
	if req.Params.RequestState != "" {
		var err error
		if state, err = f.openState(req.Params.RequestState); err != nil {
			return nil, err
		}
	}
	in := req.Params.InputResponses
	if answer := server.ElicitationResponse(in, "step1"); state.Round == 1 && answer != nil {
		next := f.sealState(requestState{Round: 2, Name: field(answer, "name")})
		return server.NewInputRequestBuilder(next).
			Elicit("step2", mcp.ElicitationParams{Message: "Step 2: What is your favorite color?", RequestedSchema: objectSchema("color", "string")}).
			ToolResult(), nil
	}
	if answer := server.ElicitationResponse(in, "step2"); state.Round == 2 && answer != nil {
		return mcp.NewToolResultText(fmt.Sprintf("Multi-round complete for %s who likes %s", state.Name, field(answer, "color"))), nil
	}
	return server.NewInputRequestBuilder(f.sealState(requestState{Round: 1})).
		Elicit("step1", nameRequest("Step 1: What is your name?")).ToolResult(), nil
}

// askDeclared asks only for the kinds of input the client declared it can
// give (SEP-2322: a server must not send input requests the client cannot
// fulfil), and reports which answers came back.
func (f *Fixture) askDeclared(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if in := req.Params.InputResponses; len(in) > 0 {
		keys := make([]string, 0, len(in))
		for k := range in {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return mcp.NewToolResultText("capabilities-ok: received " + strings.Join(keys, ",")), nil
	}
	caps := clientCapabilities(ctx)
	b := server.NewInputRequestBuilder(f.sealState(requestState{Kind: "capabilities-test"}))
	asked := false
	if caps.Elicitation != nil {
		b.Elicit("elicit_input", mcp.ElicitationParams{Message: "Elicitation input", RequestedSchema: objectSchema("value", "string")})
		asked = true
	}
	if caps.Sampling != nil {
		b.Sample("sample_input", mcp.CreateMessageParams{Messages: []mcp.SamplingMessage{userText("Sample request")}, MaxTokens: 50})
		asked = true
	}
	if !asked {
		return mcp.NewToolResultText("No supported capabilities declared"), nil
	}
	return b.ToolResult(), nil
}

// needsSampling succeeds only for a client that declared sampling. A
// 2026-07-28 request without it is refused before mcp-go sees it (see
// refuseMissingCapability); a legacy client without it gets a tool error.
func needsSampling(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if clientCapabilities(ctx).Sampling == nil {
		return mcp.NewToolResultError("this tool needs the sampling capability"), nil
	}
	return mcp.NewToolResultText("Success"), nil
}

// logOnce sends one info log message, only if the request asked for that
// level (2026-07-28: no logLevel in _meta, no log messages).
func (f *Fixture) logOnce(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := f.log(ctx, mcp.LoggingLevelInfo, "Diagnostic trace logging activated"); err != nil {
		return nil, err
	}
	return mcp.NewToolResultText("Logging evaluated"), nil
}

// askContext is a prompt that elicits the context it is about.
func askContext(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	if answer := server.ElicitationResponse(req.Params.InputResponses, "user_context"); answer != nil {
		return mcp.NewGetPromptResult("", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Prompt with context: "+field(answer, "context"))),
		}), nil
	}
	return server.NewInputRequestBuilder("").Elicit("user_context", mcp.ElicitationParams{
		Message: "What context should the prompt use?", RequestedSchema: objectSchema("context", "string"),
	}).PromptResult(), nil
}

// clientCapabilities returns what the client declared: in this request's
// _meta (2026-07-28), or at initialize (legacy).
func clientCapabilities(ctx context.Context) mcp.ClientCapabilities {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern && info.ClientCapabilities != nil {
		return *info.ClientCapabilities
	}
	if session, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return session.GetClientCapabilities()
	}
	return mcp.ClientCapabilities{}
}

// nameRequest elicits a name.
func nameRequest(message string) mcp.ElicitationParams {
	return mcp.ElicitationParams{Message: message, RequestedSchema: objectSchema("name", "string")}
}

// objectSchema is an elicitation schema with one required property.
func objectSchema(name, typ string) map[string]any {
	return map[string]any{
		"type":       "object",
		"properties": map[string]any{name: map[string]any{"type": typ}},
		"required":   []string{name},
	}
}

// field returns a string field of an accepted elicitation's content, or
// "unknown".
func field(answer *mcp.ElicitationResult, name string) string {
	if content, ok := answer.Content.(map[string]any); ok {
		if s, ok := content[name].(string); ok {
			return s
		}
	}
	return "unknown"
}

// requestState is what a tool keeps in requestState between rounds.
type requestState struct {
	Kind  string `json:"kind,omitempty"`
	Round int    `json:"round,omitempty"`
	Name  string `json:"name,omitempty"`
}

// sealState encodes state with an HMAC-SHA256 over it, so that openState
// can tell whether the client returned it intact.
func (f *Fixture) sealState(state requestState) string {
	payload, _ := json.Marshal(state) // a struct of strings and ints always marshals
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(f.stateMAC(payload))
}

// openState verifies and decodes a state made by sealState.
func (f *Fixture) openState(sealed string) (requestState, error) {
	var state requestState
	enc := base64.RawURLEncoding
	p, m, ok := strings.Cut(sealed, ".")
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(m)
	if !ok || err1 != nil || err2 != nil || !hmac.Equal(mac, f.stateMAC(payload)) {
		return state, errTamperedState
	}
	if err := json.Unmarshal(payload, &state); err != nil {
		return state, errTamperedState
	}
	return state, nil
}

// stateMAC is the HMAC-SHA256 of payload under the fixture's key.
func (f *Fixture) stateMAC(payload []byte) []byte {
	h := hmac.New(sha256.New, f.stateKey)
	h.Write(payload)
	return h.Sum(nil)
}
