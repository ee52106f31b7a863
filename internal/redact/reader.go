package redact

import (
	"bytes"
	"io"
)

// readChunk is how much a Reader asks of its source at a time.
const readChunk = 32 << 10

// Reader returns rc with the secrets hidden as a Writer hides them, for a
// body that is read rather than written, such as an http.Response's that
// a reverse proxy copies on. What could be the beginning of a secret is
// held back until what follows settles it, or rc ends. On a nil Secrets it
// returns rc itself.
func (s *Secrets) Reader(rc io.ReadCloser) io.ReadCloser {
	if s == nil {
		return rc
	}
	r := &reader{src: rc}
	r.w = s.Writer(&r.out)
	return r
}

// reader is the ReadCloser that Reader returns.
type reader struct {
	src io.ReadCloser
	w   *Writer      // writes the redacted bytes to out
	out bytes.Buffer // redacted, not yet read
	buf []byte       // for reading src
	err error        // what src ended with
}

// Read reads from the source until some redacted bytes are ready, and
// returns them; then the source's error, io.EOF once all is read.
func (r *reader) Read(p []byte) (int, error) {
	for r.out.Len() == 0 && r.err == nil {
		if r.buf == nil {
			r.buf = make([]byte, readChunk)
		}
		n, err := r.src.Read(r.buf)
		// A bytes.Buffer's Write never fails, so neither does the Writer's.
		_, _ = r.w.Write(r.buf[:n])
		if err == io.EOF {
			_ = r.w.Close()
		}
		r.err = err
	}
	if r.out.Len() > 0 {
		return r.out.Read(p)
	}
	return 0, r.err
}

// Close closes the source.
func (r *reader) Close() error { return r.src.Close() }
