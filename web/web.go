// Package web holds the browser pages of mcpgate: the Connectors page and
// the page a consent flow ends on. They are plain HTML with no script.
package web

import (
	"embed"
	"html/template"
	"io"
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
