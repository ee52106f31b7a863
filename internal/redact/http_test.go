package redact

import (
	"net/http"
	"testing"
)

// TestSearchable checks which answers Response refuses as unsearchable:
// any content coding but identity, in any of the header's values or list
// items, and charsets that do not spell ASCII as ASCII.
func TestSearchable(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		ok   bool
	}{
		{"plain", http.Header{"Content-Type": {"application/json"}}, true},
		{"identity", http.Header{"Content-Encoding": {"identity"}}, true},
		{"utf-8", http.Header{"Content-Type": {"text/plain; charset=UTF-8"}}, true},
		{"latin-1", http.Header{"Content-Type": {"text/html; charset=iso-8859-1"}}, true},
		{"a bad type", http.Header{"Content-Type": {"text/plain; charset"}}, true},
		{"gzip", http.Header{"Content-Encoding": {"gzip"}}, false},
		{"gzip second", http.Header{"Content-Encoding": {"identity", "gzip"}}, false},
		{"gzip in a list", http.Header{"Content-Encoding": {"identity, br"}}, false},
		{"utf-16", http.Header{"Content-Type": {"text/plain; charset=UTF-16"}}, false},
		{"utf-16le", http.Header{"Content-Type": {"application/json; charset=utf-16le"}}, false},
		{"utf-32", http.Header{"Content-Type": {"text/plain; charset=utf-32be"}}, false},
		{"utf-7", http.Header{"Content-Type": {"text/plain; charset=utf-7"}}, false},
		// Clients read a charset leniently: past a malformed parameter, in
		// a second value, quoted, or by another name of the same charset.
		{"utf-16 before a bad parameter", http.Header{"Content-Type": {"text/plain; charset=utf-16; x"}}, false},
		{"utf-16 in a second value", http.Header{"Content-Type": {"text/plain", "text/plain; charset=utf-16"}}, false},
		{"utf-16 quoted", http.Header{"Content-Type": {`text/plain; charset="utf-16"`}}, false},
		{"utf16", http.Header{"Content-Type": {"text/plain; charset=utf16"}}, false},
		{"utf_32", http.Header{"Content-Type": {"text/plain; charset=UTF_32"}}, false},
		{"ucs-2", http.Header{"Content-Type": {"text/plain; charset=ucs-2"}}, false},
		{"unicode", http.Header{"Content-Type": {"text/plain; charset=unicodeFFFE"}}, false},
		{"ebcdic", http.Header{"Content-Type": {"text/plain; charset=cp037"}}, false},
		{"utf-8 named loosely", http.Header{"Content-Type": {`text/plain; Charset="utf8"`}}, true},
	}
	for _, tt := range tests {
		if err := searchable(tt.h); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestRequest checks that a request whose answer will be searched asks
// for identity encoding, the whole body and no charset, and that a nil
// Secrets leaves it alone.
func TestRequest(t *testing.T) {
	h := http.Header{"Accept-Encoding": {"gzip"}, "Range": {"bytes=0-3"}, "If-Range": {`"x"`}, "Accept-Charset": {"utf-16"}, "Accept": {"*/*"}}
	New("s3cr3t-t0ken").Request(h)
	want := http.Header{"Accept-Encoding": {"identity"}, "Accept": {"*/*"}}
	if len(h) != len(want) || h.Get("Accept-Encoding") != "identity" || h.Get("Accept") != "*/*" {
		t.Errorf("prepared header = %v, want %v", h, want)
	}
	h = http.Header{"Range": {"bytes=0-3"}}
	(*Secrets)(nil).Request(h)
	if h.Get("Range") == "" {
		t.Error("a nil Secrets changed the request")
	}
}
