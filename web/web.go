// Package web is mcpgate's HTTP surface for people and agents: the MCP
// endpoints, the Connectors page and its JSON, connect and disconnect,
// the OAuth callback and the client metadata document, as one
// http.Handler. Its pages are plain HTML with no script.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"io"
	"net/http"
)

//go:embed *.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "*.html"))

// Connector is one row of the Connectors page.
type Connector struct {
	// ID is the connector's id.
	ID string
	// Status is what the user is told: ready, needs_auth…
	Status string
	// Reason explains a status other than ready.
	Reason string
	// State is the OAuth connection state, if the connector uses OAuth.
	State string
	// CanConnect shows the Connect (or Reconnect and Disconnect) buttons.
	CanConnect bool
	// Focus highlights the row: the connector a link asked to connect.
	Focus bool
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
	// Connectors are the rows.
	Connectors []Connector
	// Back is the absolute URL of the page, where a consent flow returns.
	Back string
	// Banner, if set, reports how the last action went.
	Banner *Banner
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
// one: its buttons are forms, its style inline.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

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
