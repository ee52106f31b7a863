package web

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"

	"github.com/mcpgate/caddy-mcpgate/mcpmux"
)

// Error is a failure to answer with: a status, a message safe to show the
// caller, the headers that go with it, and extra JSON members. Routes
// return it unwritten, so that a host such as Caddy may handle it; only
// WriteError renders it.
type Error struct {
	// Status is the HTTP status; zero means 500.
	Status int
	// Message is the "error" member of the body. It is shown to the
	// caller, so it names the problem and never holds a secret.
	Message string
	// Header is set on the response before the status is written, such
	// as Allow for a 405 or Retry-After for a 503.
	Header http.Header
	// Fields are members of the JSON body besides "error", which they
	// never replace.
	Fields map[string]string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// WriteError writes err as a JSON body {"error": …}. An *Error, or an
// error wrapping one, is written with its status, headers and fields; any
// other error is a 500 whose text is never shown, since it may hold
// internals (a path, an upstream's answer). A nil err writes nothing.
func WriteError(w http.ResponseWriter, err error) {
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Message: "internal error"}
	}
	maps.Copy(w.Header(), e.Header)
	body := make(map[string]string, len(e.Fields)+1)
	maps.Copy(body, e.Fields)
	body["error"] = e.Message
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, body)
}

// fail is an *Error with no header and no field.
func fail(status int, msg string) *Error {
	return &Error{Status: status, Message: msg}
}

// notFound answers a path that names no endpoint, or a connector that
// does not exist or that the caller may not see, all alike: a caller
// cannot tell a hidden connector from a missing one.
func notFound() *Error {
	return fail(http.StatusNotFound, mcpmux.NoSuchConnector)
}

// notAllowed answers a method an endpoint does not take, with the Allow
// header RFC 9110 §15.5.6 requires.
func notAllowed(allow, msg string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Message: msg, Header: http.Header{"Allow": {allow}}}
}

// writeJSON writes v as JSON. A write error is not returned: the status
// is out, and the client that went away cannot be told anything more.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
