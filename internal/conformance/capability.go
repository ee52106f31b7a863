package conformance

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// refuseMissingCapability answers a 2026-07-28 call of test_missing_capability
// from a client that did not declare sampling with
// MissingRequiredClientCapabilityError (-32021, HTTP 400, SEP-2575), and
// reports whether it did. mcp-go cannot: it reports any error a tool handler
// returns as an internal error (-32603), and its own -32021 carries no
// error.data.requiredCapabilities.
func (f *Fixture) refuseMissingCapability(w http.ResponseWriter, r *http.Request) bool {
	if f.era == LegacyOnly || r.Method != http.MethodPost || !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		return false
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false // mcp-go reports the unreadable body
	}
	var call struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string    `json:"name"`
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &call) != nil || call.Method != string(mcp.MethodToolsCall) || call.Params.Name != "test_missing_capability" {
		return false
	}
	if caps := call.Params.Meta.ClientCapabilities(); caps == nil || caps.Sampling != nil {
		return false // mcp-go refuses a request without capabilities itself
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": mcp.JSONRPC_VERSION,
		"id":      call.ID,
		"error": mcp.JSONRPCErrorDetails{
			Code:    mcp.MISSING_REQUIRED_CLIENT_CAPABILITY,
			Message: "missing required client capability: sampling",
			Data:    map[string]any{"requiredCapabilities": map[string]any{"sampling": map[string]any{}}},
		},
	})
	return true
}
