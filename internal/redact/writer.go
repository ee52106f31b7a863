package redact

import (
	"io"
	"net/http"
)

// maxHeld bounds what a Writer holds when overlapping occurrences keep
// running on (a secret like "aaaaaaaa" in a run of a's): past it, the
// occurrences found so far are written out redacted.
const maxHeld = 64 << 10

// Writer redacts a stream, such as an API response body, as Text would
// redact it whole, and passes it on to another writer. It holds back only
// what could be the beginning of a secret, fewer bytes than the longest
// occurrence of one, until what follows settles it; Close writes the rest.
// Memory stays bounded whatever the stream's length. A Writer is not safe
// for concurrent use.
type Writer struct {
	s   *Secrets
	w   io.Writer
	buf []byte
	err error
}

// Writer returns a Writer that redacts what it is given and writes it to w.
// Since redaction changes lengths, a response written through it must not
// declare a Content-Length, and since it reads the bytes as they are, the
// stream must not be compressed (ask the upstream for identity encoding).
func (s *Secrets) Writer(w io.Writer) *Writer {
	return &Writer{s: s, w: w}
}

// Write redacts p and writes all of it that cannot be the beginning of a
// secret. It reports len(p) unless writing fails.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.s == nil {
		return w.w.Write(p)
	}
	w.buf = append(w.buf, p...)
	if err := w.emit(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush flushes the underlying writer when it is an http.Flusher. The
// bytes that could begin a secret stay held: writing them could leak part
// of one, so a stream whose last bytes look like the start of a secret
// sees them only when more comes or at Close.
func (w *Writer) Flush() {
	if f, ok := w.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Close writes what is still held, redacted. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	return w.emit(true)
}

// emit writes the part of buf that is settled: everything but a tail that
// could begin a secret, and never half of an occurrence.
func (w *Writer) emit(final bool) error {
	sp := w.s.spans(w.buf, false)
	cut := len(w.buf)
	if !final {
		cut = w.s.pending(w.buf)
	}
	cut = settled(sp, cut, len(w.buf) > maxHeld)
	var edits []edit
	for _, x := range sp {
		if x.end <= cut {
			edits = append(edits, edit{start: x.start, end: x.end})
		}
	}
	if cut > 0 {
		if _, err := w.w.Write(apply(w.buf[:cut], edits)); err != nil {
			w.err = err
			return err
		}
	}
	w.buf = w.buf[:copy(w.buf, w.buf[cut:])]
	return nil
}

// settled moves cut back to the start of the merged occurrences that
// straddle it, so that none is written in part; or, when force and that
// start is 0, forward to their end.
func settled(sp []span, cut int, force bool) int {
	for i := 0; i < len(sp); {
		start, end := sp[i].start, sp[i].end
		for i++; i < len(sp) && sp[i].start < end; i++ {
			end = max(end, sp[i].end)
		}
		if start < cut && cut < end {
			if start == 0 && force {
				return end
			}
			return start
		}
	}
	return cut
}

// pending returns where the tail of buf begins that could be the start of
// an occurrence still to be completed, or len(buf). Only the last
// longest-1 bytes can hold one.
func (s *Secrets) pending(buf []byte) int {
	for p := max(len(buf)-s.longest+1, 0); p < len(buf); p++ {
		for i := range s.list {
			if _, more := match(buf, p, s.list[i].value, false); more {
				return p
			}
		}
	}
	return len(buf)
}
