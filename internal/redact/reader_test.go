package redact

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReader checks that a body read through Reader comes out as Text
// redacts it whole, however its source splits it: at every single cut,
// byte by byte, and past one read's chunk.
func TestReader(t *testing.T) {
	const secret = "s3cr3t-t0ken/+="
	s := New(secret)
	bodies := []string{
		"",
		"no secret here",
		secret,
		`{"echo":"` + secret + `","again":"` + strings.ReplaceAll(secret, "/", `\/`) + `"}`,
		"data: " + secret + "\n\n" + strings.Repeat("x", readChunk-3) + secret + strings.Repeat("y", 100),
		secret[:5] + " a prefix only, then " + secret,
	}
	for _, body := range bodies {
		want := s.Text([]byte(body))
		if bytes.Contains(want, []byte(secret)) {
			t.Fatalf("Text left the secret in %q", body)
		}
		read := func(src io.Reader) []byte {
			t.Helper()
			got, err := io.ReadAll(s.Reader(io.NopCloser(src)))
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := read(strings.NewReader(body)); !bytes.Equal(got, want) {
			t.Errorf("whole: got %q, want %q", got, want)
		}
		if got := read(iotest.OneByteReader(strings.NewReader(body))); !bytes.Equal(got, want) {
			t.Errorf("byte by byte: got %q, want %q", got, want)
		}
		for cut := range min(len(body), 64) {
			src := io.MultiReader(strings.NewReader(body[:cut]), strings.NewReader(body[cut:]))
			if got := read(src); !bytes.Equal(got, want) {
				t.Errorf("cut at %d: got %q, want %q", cut, got, want)
			}
		}
	}
}

// TestReaderPassesOn checks the edges: a nil Secrets reads the source as
// it is, a source's error reaches the reader, and Close closes the source.
func TestReaderPassesOn(t *testing.T) {
	src := io.NopCloser(strings.NewReader("x"))
	if (*Secrets)(nil).Reader(src) != src {
		t.Error("a nil Secrets wrapped the body")
	}
	boom := errors.New("boom")
	r := New("s3cr3t-t0ken").Reader(io.NopCloser(iotest.ErrReader(boom)))
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Errorf("the source's error became %v", err)
	}
	closed := &closeRecorder{Reader: strings.NewReader("")}
	if err := New("s3cr3t-t0ken").Reader(closed).Close(); err != nil || !closed.closed {
		t.Errorf("Close: %v, source closed %v", err, closed.closed)
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }
