package mcpmux

import "testing"

// TestMediaTypeOf: the plain values skip parsing and every other spelling
// reads as mime.ParseMediaType reads it.
func TestMediaTypeOf(t *testing.T) {
	for in, want := range map[string]string{
		"application/json":                "application/json",
		"text/event-stream":               "text/event-stream",
		"application/json; charset=utf-8": "application/json",
		"Application/JSON":                "application/json",
		"text/event-stream;charset=UTF-8": "text/event-stream",
		"":                                "",
		"text/html":                       "text/html",
	} {
		if got := mediaTypeOf(in); got != want {
			t.Errorf("mediaTypeOf(%q) = %q, want %q", in, got, want)
		}
	}
}
