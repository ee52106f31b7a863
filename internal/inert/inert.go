// Package inert makes what an HTTP API answers through the gateway inert
// on the gateway's origin.
//
// The gateway serves every connector's API under its own origin, beside
// /mcp, the connect and disconnect endpoints and every other connector's
// API. A response relayed as the API sent it would act there: an HTML page
// would run its scripts as the gateway, a Set-Cookie would plant a cookie
// that the browser sends to every endpoint, a Strict-Transport-Security or
// Clear-Site-Data would change how the browser treats the whole origin. So
// every API response carries a sandboxing Content-Security-Policy (Mark),
// and only the response headers that describe the content or the exchange
// to the agent pass (Response); every other header, including ones that
// browsers will only learn tomorrow, is dropped.
//
// It is production code: the root package marks every API answer with
// it. It sits under internal/ only so that no other module builds on it.
package inert

import (
	"io"
	"mime"
	"net/http"
	"strings"
)

// Policy is the Content-Security-Policy of every API response. sandbox
// gives a document rendered from it an opaque origin, with no scripts, no
// forms, no popups and no navigation of the top window, so that it is
// same-origin with nothing of the gateway's; default-src 'none' lets it
// load nothing (no beacon, no style, no frame); frame-ancestors 'none'
// keeps other sites from framing it (clickjacking); form-action 'none' and
// base-uri 'none' close the two fetch directives default-src does not
// cover. The policy binds only a document made from the response itself:
// the gateway's own page can still read an API with fetch.
const Policy = "sandbox; default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"

// Mark sets the headers that every API response carries, whoever wrote
// it: the API, the proxy (502, 504) or the gateway (400, 403, 404):
// Policy; nosniff, so that a browser takes the Content-Type as it is and
// never runs a response as a script or a style it was not declared as;
// and Cross-Origin-Resource-Policy same-origin, so that no other site can
// embed a response, made with the caller's ambient credentials, as a
// script or an image and read it (cross-site script inclusion).
func Mark(h http.Header) {
	h.Set("Content-Security-Policy", Policy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// allowed are the response headers that pass from an API, in canonical
// form. Each describes the content or the exchange to the agent, and no
// browser acts on it beyond the response at hand:
//   - the representation and its range (RFC 9110 sections 8 and 14);
//     Content-Disposition is forced to attachment for active types;
//   - validators and caching (RFC 9110 section 8.8, RFC 9111), with
//     Cache-Control made private: the response was made with a credential
//     that may be the caller's own;
//   - Retry-After, Allow, and the rate-limit fields (the IETF RateLimit
//     fields and the X-RateLimit-* convention, see allowedPrefixes);
//   - request ids and the pagination counts of common APIs;
//   - Location, mapped onto the gateway (see Paths.location);
//   - what a protocol switch (101, WebSocket) needs to complete; the proxy
//     restores Connection itself.
//
// Left out on purpose, among all others: Set-Cookie, Clear-Site-Data,
// Access-Control-*, Strict-Transport-Security, Content-Security-Policy(-
// Report-Only), Refresh, Link (preload, prefetch, stylesheets, also in 103
// Early Hints), WWW-Authenticate and Proxy-Authenticate (the API's
// challenge concerns the gateway's credential, and a Basic challenge
// would open a login dialog on the gateway's origin), Service-Worker-
// Allowed, Origin-Agent-Cluster, Alt-Svc, Report-To, NEL,
// Reporting-Endpoints, Permissions-Policy, Cross-Origin-*-Policy,
// X-Frame-Options, Content-Location, and X-Accel-Redirect or X-Sendfile,
// which a server in front of the gateway might obey.
var allowed = canonicalSet(
	"Content-Type", "Content-Length", "Content-Encoding", "Content-Language", "Content-Range",
	"Content-Disposition", "Accept-Ranges",
	"ETag", "Last-Modified", "Cache-Control", "Expires", "Vary", "Date", "Age",
	"Retry-After", "Allow", "RateLimit", "RateLimit-Policy",
	"X-Request-Id", "X-Correlation-Id",
	"X-Total-Count", "X-Total", "X-Total-Pages", "X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page",
	"Location",
	"Upgrade", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
)

// allowedPrefixes are the prefixes of allowed header families, in
// canonical form: RateLimit-Limit, -Remaining, -Reset (earlier drafts of
// the IETF fields) and their X-RateLimit-* forerunners.
var allowedPrefixes = []string{"Ratelimit-", "X-Ratelimit-"}

func canonicalSet(names ...string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, name := range names {
		set[http.CanonicalHeaderKey(name)] = true
	}
	return set
}

// Allowed reports whether an API's response header may reach the agent.
func Allowed(name string) bool {
	name = http.CanonicalHeaderKey(name)
	if allowed[name] {
		return true
	}
	for _, prefix := range allowedPrefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// Filter deletes from h every header that Allowed refuses. It suits the
// header of an informational (1xx) response, and trailers.
func Filter(h http.Header) {
	for name := range h {
		if !Allowed(name) {
			delete(h, name)
		}
	}
}

// Response makes res, an API's answer to a request p describes, fit to
// reach the agent: its header filtered, its Location mapped onto the
// gateway or dropped, an active type downloaded rather than rendered,
// its caching private; and its trailers filtered once they have come.
// The headers of Mark are the caller's to set on the response writer.
func Response(res *http.Response, p *Paths) {
	h := res.Header
	Filter(h)
	// A 101 has no content, and its body is the switched connection, which
	// the proxy needs as it is.
	if res.StatusCode == http.StatusSwitchingProtocols {
		return
	}
	Filter(res.Trailer) // the announced ones, which the proxy announces in turn
	if loc := h.Get("Location"); loc != "" {
		if mapped, ok := p.location(loc); ok {
			h.Set("Location", mapped)
		} else {
			h.Del("Location")
		}
	}
	attachActive(h)
	privateCache(h)
	if res.Body != nil && res.Body != http.NoBody {
		res.Body = &trailerFilter{ReadCloser: res.Body, res: res}
	}
}

// trailerFilter filters the trailers of res as soon as they have come:
// net/http fills in res.Trailer, announced or not, when the body reaches
// its end, and the proxy relays them after it closes the body.
type trailerFilter struct {
	io.ReadCloser
	res *http.Response
}

// Read reads the body, and filters the trailers at its end.
func (b *trailerFilter) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		Filter(b.res.Trailer)
	}
	return n, err
}

// Close closes the body, and filters the trailers.
func (b *trailerFilter) Close() error {
	err := b.ReadCloser.Close()
	Filter(b.res.Trailer)
	return err
}

// attachActive makes a browser download, rather than render, a response
// of a type it would render as an active document: HTML, XML and SVG,
// which can hold scripts, and a response whose type it would have to
// guess. Policy already sandboxes such a document; this holds also for a
// browser that does not know the sandbox directive. A filename the API
// gave is kept.
func attachActive(h http.Header) {
	if !activeType(h.Get("Content-Type")) {
		return
	}
	disposition, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || disposition != "attachment" {
		if formatted := mime.FormatMediaType("attachment", params); formatted != "" {
			h.Set("Content-Disposition", formatted)
			return
		}
		h.Set("Content-Disposition", "attachment")
	}
}

// activeType reports whether a browser could render a response of
// content type ct as a document that runs script.
func activeType(ct string) bool {
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true // missing or malformed: the browser would guess
	}
	switch mediaType {
	case "text/html", "application/xhtml+xml", "text/xml", "application/xml", "image/svg+xml",
		"text/xsl", "application/xslt+xml", "multipart/x-mixed-replace":
		return true
	}
	return strings.HasSuffix(mediaType, "+xml")
}

// privateCache keeps a response out of shared caches (RFC 9111 section
// 5.2.2.7): the API answered the gateway's credential for this caller,
// which may be the caller's own OAuth token, so a cache in front of the
// gateway must not serve it to anyone else. public and s-maxage, which
// would let one, are dropped; no-store already keeps it from every cache.
func privateCache(h http.Header) {
	var kept []string
	noStore := false
	for _, directive := range strings.Split(strings.Join(h.Values("Cache-Control"), ","), ",") {
		directive = strings.TrimSpace(directive)
		name, _, _ := strings.Cut(directive, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "", "public", "private", "s-maxage", "proxy-revalidate":
			continue
		case "no-store":
			noStore = true
		}
		kept = append(kept, directive)
	}
	if !noStore {
		kept = append([]string{"private"}, kept...)
	}
	h.Set("Cache-Control", strings.Join(kept, ", "))
}
