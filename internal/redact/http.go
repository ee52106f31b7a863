package redact

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
	_, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return nil
	}
	if cs := strings.ToLower(params["charset"]); strings.HasPrefix(cs, "utf-16") || strings.HasPrefix(cs, "utf-32") ||
		strings.HasPrefix(cs, "ucs-") || strings.HasPrefix(cs, "utf-7") {
		return fmt.Errorf("the upstream answered in charset %q: it cannot be searched for the credential", textcut.Prefix(cs, 32))
	}
	return nil
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
