package testupstream

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// mcp-go marshals every result through fixed Go types, so it cannot emit a
// member the protocol does not define (an extension field), nor an
// explicit "isError": false, which CallToolResult omits. The gateway must
// pass such members through untouched, so the responses that carry them are
// rewritten here on their way out, after mcp-go wrote them.
//
// The rewrite is textual and leaves every other byte as mcp-go wrote it.
// mcp-go writes compact JSON (json.Encoder, or json.Marshal for each SSE
// "data:" line), so a fixed byte pattern finds the place to insert, in a
// plain JSON response and in an SSE stream alike. A member is inserted at
// the start of an object or just before a known member; JSON gives member
// order no meaning.

// The members spliced in, exported so that the gateway's tests can look for
// the same bytes in what reaches the agent.
const (
	// ExtensionResultMember is the unknown top-level member the extension
	// tool's result carries.
	ExtensionResultMember = `"x-vendor-extension":{"k":[1,2.5,"s",null]}`
	// ExtensionToolMember is the unknown member of the extension tool's
	// definition in tools/list.
	ExtensionToolMember = `"x-vendor":true`
)

var (
	resultStart       = []byte(`"result":{`)
	extensionToolName = []byte(`"name":"extension"`)
)

// rewriteFor returns the rewrite for the response to the request in body,
// or nil when mcp-go's response needs none.
func rewriteFor(body []byte) func([]byte) []byte {
	// Most requests are not tool requests; skip decoding them.
	if !bytes.Contains(body, []byte(`"tools/`)) {
		return nil
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return nil
	}
	switch {
	case msg.Method == "tools/list":
		return insertBefore(extensionToolName, ExtensionToolMember+",")
	case msg.Method == "tools/call" && msg.Params.Name == "extension":
		return insertAfter(resultStart, ExtensionResultMember+",")
	case msg.Method == "tools/call" && msg.Params.Name == "rich":
		return insertAfter(resultStart, `"isError":false,`)
	}
	return nil
}

// insertAfter returns a rewrite that inserts text after the first match of
// pattern. A response without the pattern, an error for instance, is left
// as it is.
func insertAfter(pattern []byte, text string) func([]byte) []byte {
	return func(b []byte) []byte {
		i := bytes.Index(b, pattern)
		if i < 0 {
			return b
		}
		return splice(b, i+len(pattern), text)
	}
}

// insertBefore returns a rewrite that inserts text before the first match
// of pattern.
func insertBefore(pattern []byte, text string) func([]byte) []byte {
	return func(b []byte) []byte {
		i := bytes.Index(b, pattern)
		if i < 0 {
			return b
		}
		return splice(b, i, text)
	}
}

func splice(b []byte, at int, text string) []byte {
	out := make([]byte, 0, len(b)+len(text))
	out = append(out, b[:at]...)
	out = append(out, text...)
	return append(out, b[at:]...)
}

// captureWriter buffers a response so that it can be rewritten. It
// implements http.Flusher as a no-op on purpose: mcp-go then keeps its
// normal choice between a JSON body and an SSE stream, and the rewrite
// applies to whichever it chose. The response reaches the client only when
// the handler is done, which is fine for the few short requests rewritten.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return c.body.Write(p)
}

func (c *captureWriter) Flush() {}

// flushTo writes the rewritten response to w.
func (c *captureWriter) flushTo(w http.ResponseWriter, rewrite func([]byte) []byte) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	out := rewrite(c.body.Bytes())
	// The length changed; let net/http compute it again.
	w.Header().Del("Content-Length")
	w.WriteHeader(c.status)
	_, _ = w.Write(out)
}
