package redact

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgate/caddy-mcpgate/internal/textcut"
)

// Request prepares the header of a request to an upstream whose answer is
// to be searched for the secrets: identity encoding, since compressed
// bytes hide them; no byte ranges, since a range can carry part of a
// secret where no search sees it, and several ranges all of it in pieces;
// and no charset preference, since UTF-16 spells a secret in other bytes.
func (s *Secrets) Request(h http.Header) {
	if s == nil {
		return
	}
	h.Set("Accept-Encoding", "identity")
	for _, name := range []string{"Range", "If-Range", "Accept-Charset"} {
		h.Del(name)
	}
}

// Header redacts every value of h in place.
func (s *Secrets) Header(h http.Header) {
	if s == nil {
		return
	}
	for _, values := range h {
		for i, v := range values {
			values[i] = s.String(v)
		}
	}
}

// Response makes an upstream's answer to a request prepared by Request fit
// to relay: its header redacted, its body redacted as it is read, and its
// trailers once the body ends. It refuses an answer whose body could hide
// a secret from the search: compressed, in a byte range, or in a charset
// that does not spell ASCII as ASCII. The body of a protocol switch (a
// WebSocket's frames) is relayed as it is; only its header is redacted.
func (s *Secrets) Response(res *http.Response) error {
	if s == nil {
		return nil
	}
	s.Header(res.Header)
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	if res.StatusCode == http.StatusPartialContent {
		return errors.New("the upstream answered with a byte range though none was asked for: a range cannot be searched for the credential")
	}
	if err := searchable(res.Header); err != nil {
		return err
	}
	res.Body = &trailerReader{ReadCloser: s.Reader(res.Body), s: s, res: res}
	// The length changes wherever a secret was.
	res.ContentLength = -1
	res.Header.Del("Content-Length")
	return nil
}

// searchable refuses a body that a byte search cannot see a secret in.
func searchable(h http.Header) error {
	for _, v := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(v, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return fmt.Errorf("the upstream answered with content encoding %q though asked for identity: it cannot be searched for the credential", textcut.Prefix(coding, 32))
			}
		}
	}
	for _, v := range h.Values("Content-Type") {
		if cs, ok := wideCharset(v); ok {
			return fmt.Errorf("the upstream answered in charset %q: it cannot be searched for the credential", textcut.Prefix(cs, 32))
		}
	}
	return nil
}

// wideCharsets are the charsets, named with letters and digits only,
// that spell ASCII in other bytes: UTF-16, UTF-32 and UCS under their
// usual names and aliases, UTF-7, and EBCDIC.
var wideCharsets = []string{"utf16", "utf32", "utf7", "u16", "u32", "u7", "ucs", "unicode", "csunicode", "iso10646",
	"ebcdic", "cp037", "ibm037", "cp273", "ibm273", "cp424", "ibm424", "cp500", "ibm500", "cp875", "ibm875",
	"cp1026", "ibm1026", "cp1140", "ibm1140"}

// wideCharset returns a charset that Content-Type value v names and that
// is among wideCharsets. It reads v as leniently as any client might, so
// that no client finds a charset it does not: every charset parameter of
// every item, past malformed ones, quoted or not, its name compared
// without case, hyphens or underscores (utf16 and UTF_16 are UTF-16 to
// Python).
func wideCharset(v string) (string, bool) {
	for _, param := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
		name, value, ok := strings.Cut(param, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "charset") {
			continue
		}
		cs := strings.ToLower(strings.Trim(value, "\"' \t"))
		folded := strings.Map(func(r rune) rune {
			if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
				return r
			}
			return -1
		}, cs)
		if slices.ContainsFunc(wideCharsets, func(w string) bool { return strings.HasPrefix(folded, w) }) {
			return cs, true
		}
	}
	return "", false
}

// trailerReader redacts a response's trailers, which the transport fills
// in when the body ends, before the proxy copies them on.
type trailerReader struct {
	io.ReadCloser
	s   *Secrets
	res *http.Response
}

// Read reads the body, and redacts the trailers at its end.
func (r *trailerReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.s.Header(r.res.Trailer)
	}
	return n, err
}
