package mcpmux

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrUnauthorized means an upstream refused mcpgate's credential. Match it
// with errors.Is: a *StatusError of a 401, or of a 403 insufficient_scope,
// is one.
var ErrUnauthorized = errors.New("upstream refused the credential")

// StatusError is an upstream's HTTP answer that is not MCP.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Challenge is the WWW-Authenticate header of a 401, for OAuth discovery.
	Challenge string
}

// Error describes the status without the upstream's body, which may echo
// secrets.
func (e *StatusError) Error() string {
	if e.Code == 401 {
		return "upstream refused the credential (HTTP 401)"
	}
	return fmt.Sprintf("upstream answered HTTP %d", e.Code)
}

// Is makes a 401 match ErrUnauthorized, and a 403 whose challenge says
// insufficient_scope: both mean the credential, not the request, is wrong
// (RFC 6750 section 3.1; Authorization, "Scope Challenge Handling"), and a
// new credential, or a consent to more scopes, may mend it.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized && (e.Code == http.StatusUnauthorized ||
		e.Code == http.StatusForbidden && strings.Contains(e.Challenge, "insufficient_scope"))
}

// JSON-RPC and MCP error codes.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603
	// codeHeaderMismatch is 2026-07-28's HeaderMismatch: an Mcp-* header
	// that disagrees with the body (Streamable HTTP, "Server Validation").
	codeHeaderMismatch = -32020
)

// rpcError is a JSON-RPC error the gateway itself answers with. Its
// message reaches the agent: it must name the problem and hold no secret.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// Error returns the message the agent reads.
func (e *rpcError) Error() string { return e.Message }

// errorf builds a gateway error with a formatted message.
func errorf(code int, format string, args ...any) *rpcError {
	return &rpcError{Code: code, Message: fmt.Sprintf(format, args...)}
}
