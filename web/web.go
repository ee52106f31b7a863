// Package web is mcpgate's HTTP surface for people and agents: the MCP
// endpoints, the Connectors page and its JSON, connect and disconnect,
// the OAuth callback and the client metadata document, as one
// http.Handler. Its pages are plain HTML with no script.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed *.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "*.html"))

// Connector is one card of the Connectors page.
type Connector struct {
	// ID is the connector's id.
	ID string
	// Title names the connector for people; the id when it has none.
	Title string
	// Description says what the connector offers, if anything does.
	Description string
	// Status is the status behind the label: ready, needs_auth…, which
	// the card carries for scripts and tests.
	Status string
	// Label is the status for people: Ready, Needs auth…
	Label string
	// Reason explains a status other than ready.
	Reason string
	// Hint says what the user can do about the status.
	Hint string
	// Group is the filter group the connector is in.
	Group string
	// State is the OAuth connection state, if the connector uses OAuth.
	State string
	// Tools says how many of its tools the user may use ("3 tools"), or
	// is empty while that is not known: not connected, or only an API.
	Tools string
	// Account is who the user connected as, where the provider says.
	Account string
	// Scopes are the scopes the connection was granted.
	Scopes []string
	// CanConnect shows the Connect (or Reconnect and Disconnect) buttons.
	CanConnect bool
	// Kept tells that the connection holds its tokens (active, or kept
	// while its provider is retried): the card offers Disconnect, not
	// Connect.
	Kept bool
	// Focus highlights the card: the connector a link asked to connect.
	Focus bool
	// Drift tells an admin of the connector's tools and prompts that
	// changed upstream, hidden until approved; nil for anyone else, and
	// when none did.
	Drift *Drift
}

// Filter is one choice of the page's status filter.
type Filter struct {
	// Group is the value of ?status=.
	Group string
	// Label names it for people.
	Label string
	// Count is how many of the user's connectors are in it.
	Count int
	// Current marks the filter the page shows.
	Current bool
}

// Banner is a message at the top of the Connectors page.
type Banner struct {
	// Text is the message.
	Text string
	// Class is "ok" or "fail".
	Class string
}

// ConnectorsPage is the data of the Connectors page.
type ConnectorsPage struct {
	// Connectors are the cards the filter shows.
	Connectors []Connector
	// Filters are the status filter's choices, one of them current.
	Filters []Filter
	// Total is how many connectors the user has, whatever the filter.
	Total int
	// Back is the absolute URL of the page, where a consent flow returns.
	Back string
	// Banner, if set, reports how the last action went.
	Banner *Banner
	// Approvals are the calls waiting for an approver, shown to approvers
	// only.
	Approvals []PendingApproval
}

// Result is the data of the page that ends a consent flow without a
// redirect_url.
type Result struct {
	// OK tells success from failure.
	OK bool
	// Title is the headline.
	Title string
	// Detail says more.
	Detail string
}

// RenderConnectors writes the Connectors page.
func RenderConnectors(w io.Writer, p ConnectorsPage) error {
	return pages.ExecuteTemplate(w, "connectors.html", p)
}

// RenderResult writes the page that ends a consent flow.
func RenderResult(w io.Writer, r Result) error {
	return pages.ExecuteTemplate(w, "result.html", r)
}

// NoStore marks a response that must not be cached or framed: it
// answers one user, and may carry a consent step.
func NoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// pageCSP lets a page load nothing, run no script and be framed by no
// one: its buttons are forms. Its style applies because the policy names
// the hash of each page's style element (CSP3 hash-source), not through
// 'unsafe-inline': a style that got into a page some other way, through a
// connector's description say, would not apply.
var pageCSP = "default-src 'none'; style-src " + styleSources(files) + "; frame-ancestors 'none'; base-uri 'none'"

// styleSources are the hash sources of the style elements of the pages in
// fsys, or 'none' if they have none. A style element holds no template
// action, so the text rendered is the text hashed here. It panics if a
// page cannot be read, as template.Must does: the pages are embedded, so
// that is a bug of the build, and a page whose style went unhashed would
// be served unstyled without a word.
func styleSources(fsys fs.FS) string {
	var srcs []string
	names, err := fs.Glob(fsys, "*.html")
	if err != nil {
		panic(fmt.Sprintf("web: listing the embedded pages: %v", err))
	}
	for _, name := range names {
		page, err := fs.ReadFile(fsys, name)
		if err != nil {
			panic(fmt.Sprintf("web: reading the embedded page %s: %v", name, err))
		}
		for _, css := range styles(page) {
			sum := sha256.Sum256(css)
			srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}

// styles returns the contents of page's <style> elements.
func styles(page []byte) [][]byte {
	var out [][]byte
	for {
		_, rest, ok := bytes.Cut(page, []byte("<style>"))
		if !ok {
			return out
		}
		css, after, ok := bytes.Cut(rest, []byte("</style>"))
		if !ok {
			return out
		}
		out, page = append(out, css), after
	}
}

// writePage writes an HTML page with the headers every page carries. It
// renders the page first, so that a failure to render writes nothing.
func writePage(w http.ResponseWriter, status int, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	h := w.Header()
	NoStore(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// writeResult writes the page that ends a consent flow.
func writeResult(w http.ResponseWriter, status int, res Result) error {
	return writePage(w, status, func(out io.Writer) error { return RenderResult(out, res) })
}
