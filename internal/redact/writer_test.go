package redact

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
)

// streamed writes text through a Writer in pieces cut at cuts, and returns
// what reached the other side.
func streamed(t *testing.T, s *Secrets, text []byte, cuts ...int) string {
	t.Helper()
	var out bytes.Buffer
	w := s.Writer(&out)
	from := 0
	for _, c := range append(cuts, len(text)) {
		if n, err := w.Write(text[from:c]); n != c-from || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		from = c
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestWriterBoundaries cuts a stream at every byte, and in every pair of
// places, and checks that the result is what redacting it whole gives:
// an occurrence split by a write is found all the same, raw or escaped.
func TestWriterBoundaries(t *testing.T) {
	s := New(token, "k3yk3y/k")
	for text, markers := range map[string]int{
		`{"a":"` + token + `","b":"ya29.a0Af\/H\u002Bx9Zq-T0k3n_zZ\u003d\u003d"}` + "\n\n": 2,
		`k3yk3yk3y\/k3yk3y/k k3k3yk3y/k ` + token[:10] + " " + token + token:               4,
		"abc" + token[:len(token)-1]: 0,
	} {
		want := string(s.Text([]byte(text)))
		if strings.Contains(want, "k3yk3y/k") || strings.Contains(want, token) || strings.Count(want, Marker) != markers {
			t.Fatalf("Text(%s) = %s, want %d markers and no secret", text, want, markers)
		}
		for i := 0; i <= len(text); i++ {
			if got := streamed(t, s, []byte(text), i); got != want {
				t.Fatalf("cut at %d:\ngot  %s\nwant %s", i, got, want)
			}
			for j := i; j <= len(text); j += 7 {
				if got := streamed(t, s, []byte(text), i, j); got != want {
					t.Fatalf("cut at %d and %d:\ngot  %s\nwant %s", i, j, got, want)
				}
			}
		}
		cuts := make([]int, len(text))
		for i := range cuts {
			cuts[i] = i
		}
		if got := streamed(t, s, []byte(text), cuts...); got != want {
			t.Fatalf("byte by byte:\ngot  %s\nwant %s", got, want)
		}
	}
}

// TestWriterHoldsLittle checks that a Writer passes on at once everything
// that cannot begin a secret, so that a streamed response (server-sent
// events) is not delayed, and holds only a tail that could.
func TestWriterHoldsLittle(t *testing.T) {
	s := New(token)
	rec := httptest.NewRecorder()
	w := s.Writer(rec)
	event := "data: {\"n\":1}\n\n"
	if _, err := w.Write([]byte(event)); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if rec.Body.String() != event || !rec.Flushed {
		t.Fatalf("an event without a secret was held: %q flushed %v", rec.Body.String(), rec.Flushed)
	}
	if _, err := w.Write([]byte("data: ya29.a0")); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != event+"data: " {
		t.Fatalf("a possible start of the secret was passed on: %q", got)
	}
	if _, err := w.Write([]byte("-not-it\n\n")); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != event+"data: ya29.a0-not-it\n\n" {
		t.Fatalf("the settled tail was not passed on: %q", got)
	}
}

// TestWriterBounded checks that overlapping occurrences without end do not
// make a Writer hold the whole stream, and that no secret gets through.
func TestWriterBounded(t *testing.T) {
	s := New("aaaaaaaa")
	var out bytes.Buffer
	w := s.Writer(&out)
	chunk := bytes.Repeat([]byte("a"), 4096)
	for range 64 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if len(w.buf) > maxHeld+len(chunk) {
			t.Fatalf("the Writer holds %d bytes", len(w.buf))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte("aaaaaaaa")) || out.Len() == 0 {
		t.Errorf("output of %d bytes holds the secret or is empty", out.Len())
	}
}

// failing is a writer that always fails.
type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errTest }

var errTest = &testError{}

type testError struct{}

func (*testError) Error() string { return "test write failed" }

func TestWriterError(t *testing.T) {
	w := New(token).Writer(failing{})
	if _, err := w.Write([]byte("hello")); err != errTest {
		t.Fatalf("Write = %v, want the writer's error", err)
	}
	if _, err := w.Write([]byte("again")); err != errTest {
		t.Fatalf("a Write after a failure = %v", err)
	}
	if err := w.Close(); err != errTest {
		t.Fatalf("Close = %v", err)
	}
}

func TestWriterNil(t *testing.T) {
	var out bytes.Buffer
	w := (*Secrets)(nil).Writer(&out)
	if _, err := w.Write([]byte("anything")); err != nil || out.String() != "anything" {
		t.Fatalf("nil Secrets: %q %v", out.String(), err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
